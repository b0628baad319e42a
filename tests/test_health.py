from server.app import create_app
from server.db.migrate import discover
from server.settings import Settings


def test_health_reports_postgis_schema_and_counts(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.")
    assert body["schema_version"] == discover()[-1].version
    assert body["counts"] == {"grids": 8, "incidents": 8}
    assert body["rollup_queue"] == 0


def test_health_shows_changes_waiting_for_the_rollups(client, conn):
    conn.execute(
        "UPDATE incidents SET description = 'checked' WHERE id IN (SELECT id FROM incidents LIMIT 3)"
    )
    conn.commit()
    assert client.get("/health").get_json()["rollup_queue"] == 3


def test_health_is_503_when_the_database_is_unreachable(tmp_path):
    # Nothing listens on port 1: the pool never gets a connection.
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none", var_dir=tmp_path)
    app = create_app(settings)
    try:
        response = app.test_client().get("/health")
    finally:
        app.extensions["gridwatch.db"].close()
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
