"""``/api/v1/incidents`` over HTTP: filing (JSON, multipart photos, GCJ-02, idempotency under
concurrent retries), bad input, and the transition endpoint."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.serving import make_server
from werkzeug.test import encode_multipart
from workflow_helpers import OWN_POINT

from server.coords import wgs84_to_gcj02


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def filing(**more):
    return {
        "lon": OWN_POINT[0],
        "lat": OWN_POINT[1],
        "category": "sanitation",
        "description": "河边垃圾",
        **more,
    }


def jpeg_with_exif_gps(lon: float, lat: float) -> bytes:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (29.0, 51.0, lat), 3: "E", 4: (103.0, 18.0, lon)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def test_filing_json_assigns_the_grid_and_returns_a_feature(client, tokens, conn):
    response = client.post(
        "/api/v1/incidents", json=filing(accuracy_m=8.5), headers=bearer(tokens["inspector1"])
    )
    assert response.status_code == 201
    feature = response.get_json()
    assert feature["type"] == "Feature" and feature["geometry"]["coordinates"] == list(OWN_POINT)
    properties = feature["properties"]
    assert properties["grid"] == "511423001001001" and properties["status"] == "reported"
    assert properties["accuracy_m"] == 8.5 and properties["channel"] == "app"
    assert properties["events"][0]["action"] == "report"
    assert response.headers["Location"].endswith(f"/api/v1/incidents/{feature['id']}")
    # the fixture's sanitation incident in the same grid is an open one nearby? no: 100 m radius
    assert isinstance(feature["possible_duplicates"], list)


@pytest.mark.parametrize("with_photo", [False, True])
def test_the_filing_answer_is_the_incident_as_read_back(client, tokens, conn, with_photo):
    # The filing builds its answer from what it wrote (no second read of the log and photos).
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    observed_at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()  # queued offline an hour ago
    fields = {**filing(accuracy_m=4, observed_at=observed_at), "crs": "wgs84"}
    if with_photo:
        answer = client.post(
            "/api/v1/incidents",
            data={
                **{k: str(v) for k, v in fields.items()},
                "photos": [(io.BytesIO(png.getvalue()), "p.png")],
            },
            content_type="multipart/form-data",
            headers=bearer(tokens["inspector1"]),
        )
    else:
        answer = client.post("/api/v1/incidents", json=fields, headers=bearer(tokens["inspector1"]))
    assert answer.status_code == 201, answer.get_json()
    filed = answer.get_json()
    read_back = client.get(answer.headers["Location"], headers=bearer(tokens["inspector1"])).get_json()
    assert {key: filed[key] for key in read_back} == read_back
    assert len(filed["properties"]["photos"]) == (1 if with_photo else 0)


def test_a_point_picked_on_a_gcj02_map_is_converted_before_storage(client, tokens, conn):
    shifted = wgs84_to_gcj02(*OWN_POINT)
    response = client.post(
        "/api/v1/incidents",
        json=filing(lon=shifted[0], lat=shifted[1], crs="gcj02"),
        headers=bearer(tokens["inspector1"]),
    )
    assert response.status_code == 201
    lon, lat = response.get_json()["geometry"]["coordinates"]
    assert lon == pytest.approx(OWN_POINT[0], abs=1e-8) and lat == pytest.approx(OWN_POINT[1], abs=1e-8)


def test_a_point_outside_the_county_is_422_and_writes_nothing(client, tokens, conn):
    before = conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"]
    response = client.post(
        "/api/v1/incidents", json=filing(lon=104.5, lat=30.5), headers=bearer(tokens["operator1"])
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "lon/lat"
    assert conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == before


def test_multipart_photos_are_cleaned_of_exif_and_their_gps_offered(client, tokens, conn):
    photo = jpeg_with_exif_gps(lon=36.0, lat=18.0)
    png = io.BytesIO()
    Image.new("RGBA", (10, 10)).save(png, "PNG")
    response = client.post(
        "/api/v1/incidents",
        data={
            **{k: str(v) for k, v in filing().items()},
            "photos": [(io.BytesIO(photo), "a.bin"), (io.BytesIO(png.getvalue()), "b.jpg")],
        },
        content_type="multipart/form-data",
        headers=bearer(tokens["inspector1"]),
    )
    assert response.status_code == 201, response.get_json()
    feature = response.get_json()
    assert [p["content_type"] for p in feature["properties"]["photos"]] == ["image/jpeg", "image/png"]
    location = feature["photo_locations"][0]
    assert location["photo"] == 0
    assert location["lon"] == pytest.approx(103 + 18 / 60 + 36 / 3600)
    assert location["lat"] == pytest.approx(29 + 51 / 60 + 18 / 3600)
    stored = client.get(feature["properties"]["photos"][0]["href"], headers=bearer(tokens["inspector1"]))
    assert stored.status_code == 200 and stored.mimetype == "image/jpeg"
    cleaned = Image.open(io.BytesIO(stored.data))
    assert cleaned.size == (64, 48) and len(cleaned.getexif()) == 0
    assert b"SecretCam" not in stored.data
    # another grid's inspector cannot fetch it
    assert (
        client.get(
            feature["properties"]["photos"][0]["href"], headers=bearer(tokens["inspector2"])
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"lat": 29.86, "category": "sanitation"}, "lon", 400),
        (filing(lon="east"), "lon", 400),
        (filing(lon=True), "lon", 400),
        (filing(lon=[1]), "lon", 400),
        (filing(lat=91), "lat", 400),
        (filing(lon=-180.5), "lon", 400),
        (filing(category=None), "category", 400),
        (filing(category="ufo_sighting"), "category", 422),
        (filing(category="x'; DROP TABLE incidents;--"), "category", 422),
        (filing(category=7), "category", 400),
        (filing(description="x" * 4001), "description", 400),
        (filing(description="nul\x00byte"), "description", 400),
        (filing(accuracy_m=-1), "accuracy_m", 400),
        (filing(crs="epsg:3857"), "crs", 400),
        (filing(priority="asap"), "priority", 400),
        (filing(channel="pigeon"), "channel", 400),
    ],
)
def test_bad_filings_name_the_field(client, tokens, conn, body, field, status):
    response = client.post("/api/v1/incidents", json=body, headers=bearer(tokens["operator1"]))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 8


@pytest.mark.parametrize(
    ("raw", "content_type", "field"),
    [
        (b'{"lon": NaN, "lat": 29.86, "category": "sanitation"}', "application/json", "body"),
        (b'{"lon": Infinity, "lat": 29.86, "category": "sanitation"}', "application/json", "body"),
        (b'{"lon": 103.31,', "application/json", "body"),
        (b"[1, 2]", "application/json", "body"),
        (b"\xff\xfe", "application/json", "body"),
        (b"lon=103.31", "text/plain", "Content-Type"),
        (b"lon=nan&lat=29.86&category=sanitation", "application/x-www-form-urlencoded", "lon"),
        (b"lon=1e999&lat=29.86&category=sanitation", "application/x-www-form-urlencoded", "lon"),
    ],
)
def test_malformed_bodies_are_400(client, tokens, raw, content_type, field):
    response = client.post(
        "/api/v1/incidents", data=raw, content_type=content_type, headers=bearer(tokens["operator1"])
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_bad_and_oversized_photos_are_refused(client, tokens, conn):
    def post(files):
        # Encoded here in memory: the test client's own encoder leaks a temp file for big bodies.
        boundary, body = encode_multipart({**{k: str(v) for k, v in filing().items()}, "photos": files})
        return client.post(
            "/api/v1/incidents",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
            headers=bearer(tokens["inspector1"]),
        )

    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")

    def upload(content: bytes, name: str = "x.jpg") -> FileStorage:
        return FileStorage(io.BytesIO(content), filename=name)

    not_an_image = post([upload(b"<script>alert(1)</script>")])
    assert not_an_image.status_code == 400 and not_an_image.get_json()["error"]["field"] == "photos"
    assert post([upload(gif.getvalue())]).status_code == 400
    big = post([upload(b"\xff\xd8" + b"0" * (8 * 1024 * 1024))])
    assert big.status_code == 413 and big.get_json()["error"]["field"] == "photos"
    too_many = post([upload(jpeg_with_exif_gps(1, 1), f"{i}.jpg") for i in range(5)])
    assert too_many.status_code == 400
    assert conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 8


def test_a_retry_with_the_same_idempotency_key_returns_the_first_incident(client, tokens, conn):
    headers = {**bearer(tokens["inspector1"]), "Idempotency-Key": "phone-42-0001"}
    first = client.post("/api/v1/incidents", json=filing(), headers=headers)
    again = client.post("/api/v1/incidents", json=filing(), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    different = client.post("/api/v1/incidents", json=filing(description="别的"), headers=headers)
    assert different.status_code == 422 and different.get_json()["error"]["field"] == "Idempotency-Key"
    stolen = client.post(
        "/api/v1/incidents",
        json=filing(),
        headers={**bearer(tokens["operator1"]), "Idempotency-Key": "phone-42-0001"},
    )
    assert stolen.status_code == 409
    assert conn.execute("SELECT count(*) AS n FROM incidents").fetchone()["n"] == 9


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_ten_concurrent_retries_with_one_key_create_one_incident(live_server, tokens, conn):
    barrier = threading.Barrier(10)
    results = []

    def post():
        request = urllib.request.Request(
            f"{live_server}/api/v1/incidents",
            data=json.dumps(filing(description="offline queue")).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {tokens['inspector1']}",
                "Idempotency-Key": "0b7f9c1e-offline-1",
            },
            method="POST",
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                results.append((response.status, json.load(response)["id"]))
        except urllib.error.HTTPError as error:
            results.append((error.code, error.read().decode()))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 9 + [201], results
    assert len({incident_id for _, incident_id in results}) == 1
    made = conn.execute("SELECT count(*) AS n FROM incidents WHERE description = 'offline queue'").fetchone()
    assert made["n"] == 1
    events = conn.execute(
        "SELECT count(*) AS n FROM incident_events e JOIN incidents i ON i.id = e.incident_id"
        " WHERE i.description = 'offline queue'"
    ).fetchone()
    assert events["n"] == 1


def test_the_transition_endpoint_reports_refusals_clearly(client, tokens):
    created = client.post("/api/v1/incidents", json=filing(), headers=bearer(tokens["inspector1"])).get_json()
    base = f"/api/v1/incidents/{created['id']}/actions"
    operator = bearer(tokens["operator1"])
    conflict = client.post(f"{base}/close", headers=operator)
    assert conflict.status_code == 409
    error = conflict.get_json()["error"]
    assert error["allowed_actions"] == ["accept", "reject", "link_duplicate", "escalate", "comment"]
    assert error["status"] == "reported"
    assert client.post(f"{base}/accept", headers=bearer(tokens["leader1"])).status_code == 403
    assert client.post(f"{base}/fly", headers=operator).status_code == 404
    assert client.post("/api/v1/incidents/999999/actions/accept", headers=operator).status_code == 404
    accepted = client.post(f"{base}/accept", json={"note": "立案"}, headers=operator)
    assert accepted.status_code == 200 and accepted.get_json()["properties"]["status"] == "accepted"
    assert accepted.get_json()["properties"]["allowed_actions"] == [
        "link_duplicate",
        "dispatch",
        "escalate",
        "comment",
    ]
    for body, field in (
        ({"department": "moon_office"}, "department"),
        ({"department": 5}, "department"),
        ({"note": ["x"]}, "note"),
        ({"duplicate_of": "one"}, "duplicate_of"),
        ({"due_at": "tomorrow"}, "due_at"),
        ({"rating": 9}, "rating"),
    ):
        refused = client.post(f"{base}/dispatch", json=body, headers=operator)
        assert refused.status_code in (400, 422) and refused.get_json()["error"]["field"] == field
    dispatched = client.post(f"{base}/dispatch", data={"department": "urban_management"}, headers=operator)
    assert dispatched.status_code == 200
    assert dispatched.get_json()["properties"]["department"] == "urban_management"
    unauthenticated = client.post(f"{base}/comment", json={"note": "x"})
    assert unauthenticated.status_code == 401


def test_an_oversized_body_is_413_naming_the_body(client, tokens):
    response = client.post(
        "/api/v1/incidents",
        data=b"{" + b" " * (16 * 1024 * 1024) + b"}",
        content_type="application/json",
        headers=bearer(tokens["operator1"]),
    )
    assert response.status_code == 413 and response.get_json()["error"]["field"] == "body"


def test_concurrent_identical_actions_take_effect_once(live_server, tokens, conn):
    incident_id = conn.execute("SELECT min(id) AS id FROM incidents").fetchone()["id"]
    barrier = threading.Barrier(6)
    statuses = []

    def accept():
        request = urllib.request.Request(
            f"{live_server}/api/v1/incidents/{incident_id}/actions/accept",
            data=b"{}",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {tokens['operator1']}"},
            method="POST",
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            error.close()

    threads = [threading.Thread(target=accept) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 5
    accepts = conn.execute(
        "SELECT count(*) AS n FROM incident_events WHERE incident_id = %s AND action = 'accept'",
        [incident_id],
    ).fetchone()
    assert accepts["n"] == 1


def test_a_resolution_photo_is_stored_with_its_event(client, tokens, conn):
    created = client.post("/api/v1/incidents", json=filing(), headers=bearer(tokens["inspector1"])).get_json()
    webp = io.BytesIO()
    Image.new("RGB", (20, 10), (0, 128, 0)).save(webp, "WEBP")
    response = client.post(
        f"/api/v1/incidents/{created['id']}/actions/self_handle",
        data={
            "note": "已现场清理",
            "photos": [FileStorage(io.BytesIO(webp.getvalue()), filename="after.webp")],
        },
        content_type="multipart/form-data",
        headers=bearer(tokens["inspector1"]),
    )
    assert response.status_code == 200
    properties = response.get_json()["properties"]
    [photo] = properties["photos"]
    [event] = [e for e in properties["events"] if e["action"] == "self_handle"]
    assert photo["event_id"] == event["id"] and photo["content_type"] == "image/webp"
    assert (photo["width"], photo["height"]) == (20, 10)


def test_reporter_me_lists_only_what_the_caller_filed(client, tokens, conn):
    operator, inspector = bearer(tokens["operator1"]), bearer(tokens["inspector1"])
    by_operator = [
        client.post("/api/v1/incidents", json=filing(description=f"热线 {n}"), headers=operator).get_json()[
            "id"
        ]
        for n in range(3)
    ]
    by_inspector = client.post("/api/v1/incidents", json=filing(), headers=inspector).get_json()["id"]

    first = client.get("/api/v1/incidents?reporter=me&limit=2", headers=operator).get_json()
    assert [f["id"] for f in first["features"]] == by_operator[:0:-1]  # newest first
    [following] = [link["href"] for link in first["links"] if link["rel"] == "next"]
    assert "reporter=me" in following
    rest = client.get(following, headers=operator).get_json()
    assert [f["id"] for f in rest["features"]] == by_operator[:1]

    mine = client.get("/api/v1/incidents?reporter=me", headers=inspector).get_json()["features"]
    assert by_inspector in [f["id"] for f in mine] and not set(by_operator) & {f["id"] for f in mine}
    assert all(f["properties"]["reporter_id"] == mine[0]["properties"]["reporter_id"] for f in mine)
    seen_by_inspector = client.get("/api/v1/incidents", headers=inspector).get_json()["features"]
    assert set(by_operator) <= {f["id"] for f in seen_by_inspector}  # without the filter: all in the grids

    for value in ("you", "1", "me,you"):
        refused = client.get(f"/api/v1/incidents?reporter={value}", headers=operator)
        assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "reporter"
