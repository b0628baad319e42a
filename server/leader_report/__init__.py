"""The monthly leader report: one self-contained HTML file (folium maps, plotly charts, tables)
built from the analytics services, so the report and the dashboard never disagree
(docs/leader-report.md)."""
