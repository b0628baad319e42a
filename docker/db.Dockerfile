# syntax=docker/dockerfile:1
# gridwatch's database: PostGIS 15-3.3 plus PL/Python with Uber's h3 package, which the heatmap's
# H3 functions run in (sql/functions/tiles.sql). Built by compose.yaml; by hand, from the
# repository root: docker build -f docker/db.Dockerfile -t gridwatch-db .
FROM postgis/postgis:15-3.3

# The image is Debian bookworm: PL/Python runs its python3 (3.11), so h3 is installed for that
# interpreter, at the version pyproject.toml pins.
COPY pyproject.toml /tmp/pyproject.toml
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-plpython3-15 python3-pip \
 && python3 -m pip install --no-cache-dir --no-deps --break-system-packages \
        "$(grep -o '"h3==[^"]*"' /tmp/pyproject.toml | tr -d '"')" \
 && apt-get purge -y python3-pip && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* /tmp/pyproject.toml
