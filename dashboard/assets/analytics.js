// The leaders' maps (dash-leaflet GeoJSON): colour each unit by the hideout's class breaks.
window.gridwatchAnalytics = {
  choropleth: function (feature, context) {
    const hideout = context.hideout || {};
    const value = feature.properties[hideout.property];
    let colour = "#d9d9d9"; // no data
    if (value !== null && value !== undefined && hideout.colours && hideout.colours.length) {
      let index = 0;
      (hideout.breaks || []).forEach(function (limit, i) {
        if (value >= limit) { index = i + 1; }
      });
      colour = hideout.colours[Math.min(index, hideout.colours.length - 1)];
    }
    if (hideout.statusColours) {
      colour = hideout.statusColours[feature.properties[hideout.statusProperty || "status"]] || colour;
    }
    return {fillColor: colour, fillOpacity: 0.8, color: "#4d5b6a", weight: 1};
  },
  hover: function () {
    return {weight: 3, color: "#1f4e79"};
  },
  // A unit's name and its figure; coverage features (read from the API) name their status
  // through the hideout's translations.
  tooltip: function (feature, layer, context) {
    const p = feature.properties || {};
    let label = p.label;
    const hideout = (context && context.hideout) || {};
    if (!label && hideout.statusNames) {
      const name = hideout.language === "en" ? (p.name_en || p.name) : p.name;
      const status = p[hideout.statusProperty || "status"];
      label = (name || p.unit) + ": " + (hideout.statusNames[status] || status);
    }
    if (label) { layer.bindTooltip(label, {sticky: true}); }
  },
};
