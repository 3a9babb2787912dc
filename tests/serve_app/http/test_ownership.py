"""Jobs belong to the key that made them: another key sees nothing of them, an admin key sees all."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import API_KEY, OTHER_KEY, app_args, url, wait_terminal
from tests.serve_app.http.test_jobs_api import png_bytes

ADMIN_KEY = "test-admin-key"


@pytest.fixture
def client(deploy, local_storage, monkeypatch) -> httpx.Client:
    """The app with key A plain, key B as the named tenant `tenant_b`, and an admin key."""
    monkeypatch.setenv("API_KEYS", f"{API_KEY},tenant_b:{OTHER_KEY}")
    monkeypatch.setenv("ADMIN_API_KEYS", f"ops:{ADMIN_KEY}")
    return deploy(app_args(local_storage))


def as_key(
    client: httpx.Client, key: str, method: str, path: str, headers: dict | None = None, **kwargs
) -> httpx.Response:
    """A request to the client's app with another API key."""
    headers = {**(headers or {}), "Authorization": f"Bearer {key}"}
    return httpx.request(method, url(client, path), headers=headers, timeout=30, **kwargs)


def test_another_key_gets_404_on_every_job_route_and_the_admin_sees_the_job(client):
    job_id = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "mine"}).json()["job_id"]
    assert wait_terminal(client, job_id)["status"] == "completed"

    for method, path in (
        ("GET", f"/api/v1/jobs/{job_id}"),
        ("POST", f"/api/v1/jobs/{job_id}/cancel"),
        ("GET", f"/api/v1/presign/download/{job_id}"),
    ):
        response = as_key(client, OTHER_KEY, method, path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "job_not_found"
        assert as_key(client, ADMIN_KEY, method, path).status_code == 200, path
    assert client.get(f"/api/v1/presign/download/{job_id}").status_code == 200  # the owner still can


def test_another_key_cannot_cancel_a_running_job(deploy, local_storage, monkeypatch):
    monkeypatch.setenv("API_KEYS", f"{API_KEY},{OTHER_KEY}")
    client = deploy(app_args(local_storage, runner="tests.fakes:MediumRunner"))
    job_id = client.post("/api/v1/generate", json={"model": "ltx2", "prompt": "keep going"}).json()["job_id"]
    assert as_key(client, OTHER_KEY, "POST", f"/api/v1/jobs/{job_id}/cancel").status_code == 404
    assert wait_terminal(client, job_id)["status"] == "completed"


def test_an_upload_of_another_key_is_a_422_on_its_field(client):
    slot = {"input_type": "image", "content_type": "image/png", "size": len(png_bytes())}
    upload = client.post("/api/v1/presign/upload", json=slot).json()
    assert httpx.put(upload["upload_url"], content=png_bytes(), headers={"Content-Type": "image/png"}).is_success
    body = {"model": "ltx2", "prompt": "x", "image_key": upload["key"]}

    stolen = as_key(client, OTHER_KEY, "POST", "/api/v1/generate", json=body)
    assert stolen.status_code == 422, stolen.text
    assert [f["field"] for f in stolen.json()["error"]["fields"]] == ["image_key"]
    own = client.post("/api/v1/generate", json=body)
    assert own.status_code == 201, own.text
    assert wait_terminal(client, own.json()["job_id"])["status"] == "completed"


def test_idempotency_keys_are_per_api_key(client):
    body = {"model": "ltx2", "prompt": "same", "seed": 1}
    mine = client.post("/api/v1/generate", json=body, headers={"Idempotency-Key": "shared"})
    theirs = as_key(client, OTHER_KEY, "POST", "/api/v1/generate", json=body, headers={"Idempotency-Key": "shared"})
    assert mine.status_code == 201 and theirs.status_code == 201, theirs.text
    assert mine.json()["job_id"] != theirs.json()["job_id"]


def list_all(client: httpx.Client, key: str, limit: int, **filters: str) -> tuple[list[dict], int]:
    """Every job the key lists, page after page; returns (jobs, pages)."""
    jobs, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **filters, **({"cursor": cursor} if cursor else {})}
        page = as_key(client, key, "GET", "/api/v1/jobs", params=params)
        assert page.status_code == 200, page.text
        jobs, cursor, pages = jobs + page.json()["jobs"], page.json()["next_cursor"], pages + 1
        if cursor is None:
            return jobs, pages


def test_the_list_pages_over_the_callers_jobs_only_newest_first(client):
    made: dict[str, list[str]] = {API_KEY: [], OTHER_KEY: []}
    for i in range(25):
        key = API_KEY if i % 2 == 0 else OTHER_KEY
        created = as_key(client, key, "POST", "/api/v1/generate", json={"model": "ltx2", "prompt": f"job {i}"})
        made[key].append(created.json()["job_id"])

    jobs, pages = list_all(client, API_KEY, limit=5)
    assert [j["job_id"] for j in jobs] == made[API_KEY][::-1]  # exactly A's 13, newest first, no repeats
    assert pages == 3
    created_at = [j["created_at"] for j in jobs]
    assert created_at == sorted(created_at, reverse=True)
    everything, _ = list_all(client, ADMIN_KEY, limit=7)
    assert {j["job_id"] for j in everything} == set(made[API_KEY]) | set(made[OTHER_KEY])

    for job_id in made[API_KEY]:
        wait_terminal(client, job_id)
    completed, _ = list_all(client, API_KEY, limit=4, status="completed")
    assert [j["job_id"] for j in completed] == made[API_KEY][::-1]
    assert list_all(client, API_KEY, limit=4, status="failed")[0] == []
    assert list_all(client, API_KEY, limit=50, model="wav2lip")[0] == []


@pytest.mark.parametrize(("params", "field"), [({"cursor": "bm90LWEtY3Vyc29y"}, "cursor"), ({"limit": 0}, "limit")])
def test_a_bad_list_query_is_a_422_naming_the_parameter(client, params, field):
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["error"]["fields"]] == [field]
