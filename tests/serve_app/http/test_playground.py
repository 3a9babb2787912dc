"""The playground and the API docs in a real browser: Debian's headless Chromium driven by Playwright (through
`executable_path`; no browser is downloaded) against the served app, with both real models on tiny random weights
and the test-only flipbook model beside them (its form appears with no change to the page).

Every request the browser makes to another host than the server is aborted and fails the test; console errors
and uncaught page errors fail it too. Screenshots of each step go to `$TEST_ARTIFACTS_DIR/playground/`
(default `tests/artifacts/playground/`, git-ignored). Playwright's sync API is used from plain (not async) tests.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

from serve_app.catalogue import CATALOGUE
from tests.conftest import API_KEY, REPO, app_args, deploy_app
from tests.deployments.test_models_through_serve import REAL_MODELS, wav_bytes
from tests.deployments.wav2lip.wav2lip_inputs import astronaut, write_clip
from tests.plugin_model.spec import SPEC as FLIPBOOK

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", REPO / "tests" / "artifacts")) / "playground"
JOB_TIMEOUT_MS = 300_000  # a tiny model's job on two slow, shared cores
UI_TIMEOUT_MS = 60_000
KEY_STORE = "video-serve-api-key"


@pytest.fixture(scope="module")
def app_url(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app at /pg: LTX-2 and Wav2Lip on tiny real models, and the flipbook plug-in running until cancelled."""
    from ray import serve

    data = tmp_path_factory.mktemp("playground") / "data"
    args = app_args({"backend": "local", "local_dir": str(data), "public_base_url": f"{serve_url}/pg"})
    for model in ("ltx2", "wav2lip"):
        args[model] = {**REAL_MODELS[model], "placement": args[model]["placement"]}
    args["flipbook"] = {"runner": "tests.fakes:UntilCancelledRunner", "placement": args["ltx2"]["placement"]}
    deploy_app(args, serve_url, name="playground", prefix="/pg", catalogue=CATALOGUE.with_models(FLIPBOOK)).close()
    yield f"{serve_url}/pg"
    serve.delete("playground")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: `make system-deps` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        yield browser
        browser.close()


@dataclass
class BrowserLog:
    """What a page did: every request, the ones to other hosts (aborted), console errors, uncaught errors."""

    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def assert_clean(self, expected_console: re.Pattern[str] | None = None) -> None:
        assert self.requests, "the page made no request at all"
        assert not self.foreign, f"requests left the server: {self.foreign}"
        assert not self.page_errors, self.page_errors
        unexpected = [m for m in self.console_errors if not (expected_console and expected_console.search(m))]
        assert not unexpected, unexpected


@dataclass
class Session:
    page: Any
    log: BrowserLog
    name: str
    shots: int = 0

    def screenshot(self, step: str, full_page: bool = True) -> None:
        """A screenshot as a test artefact, numbered in the order of the test's steps."""
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{self.shots:02d}-{step}.png"), full_page=full_page)


@pytest.fixture
def session(browser: Any, serve_url: str, request: pytest.FixtureRequest) -> Iterator[Session]:
    """A fresh browser context whose network reaches only the server: anything else is aborted and logged."""
    server = urlsplit(serve_url).netloc
    # Tall enough that no form needs scrolling: after a programmatic scroll to the button, Chromium scrolls back
    # to the field just typed in when it loses focus (between mousedown and mouseup), and the click is lost.
    context = browser.new_context(viewport={"width": 1200, "height": 2600})
    context.set_default_timeout(UI_TIMEOUT_MS)
    log = BrowserLog()

    def only_the_server(route: Any) -> None:
        target = route.request.url
        log.requests.append(target)
        if urlsplit(target).netloc == server:
            route.continue_()
        else:
            log.foreign.append(target)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    name = request.node.name.replace("test_", "", 1)
    for stale in ARTIFACTS.glob(f"{name}-*.png"):  # a screenshot of an earlier run would mislead
        stale.unlink()
    yield Session(page, log, name)
    context.close()


def open_playground(s: Session, app_url: str) -> None:
    """Open the page and set the key; the form of the first model is built from /openapi.json."""
    s.page.goto(f"{app_url}/playground")
    s.page.wait_for_selector("#fields .field")
    s.screenshot("opened")
    s.page.fill("#api-key", API_KEY)
    s.page.click("#save-key")
    s.page.wait_for_function("() => document.getElementById('key-status').textContent.includes('Key set')")
    stored = s.page.evaluate("(k) => [sessionStorage.getItem(k), localStorage.length, document.cookie]", KEY_STORE)
    assert stored == [API_KEY, 0, ""], stored


def choose_model(s: Session, model: str) -> None:
    s.page.select_option("#model", model)
    s.page.wait_for_selector(f"#fields .field[data-field='{model_field(s, model)}']")


def model_field(s: Session, model: str) -> str:
    """The first field of `model`'s form once it is rendered (the select's change rebuilds the form)."""
    return s.page.evaluate("(m) => Object.keys(models[m].properties).find((n) => n !== 'model')", model)


def wait_for_job(s: Session) -> None:
    """Wait until the page shows the submitted job; else fail with what the page and the browser saw."""
    try:
        s.page.wait_for_selector("#run:not([hidden])")
    except Exception as exc:  # Playwright's TimeoutError: say what the page shows instead
        s.screenshot("no-job")
        shown = {i: s.page.text_content(f"#{i}") for i in ("form-error", "key-status", "job-error")}
        fields = [t for t in s.page.locator(".error").all_text_contents() if t]
        busy = s.page.evaluate("document.getElementById('submit').disabled")  # still collecting or submitting
        raise AssertionError(f"no job: {shown}, errors {fields}, submit busy {busy}, browser {s.log}") from exc


def watch_progress(s: Session) -> None:
    """Record every value the bar and the stage label show, to check the bar moved with the event stream."""
    s.page.evaluate(
        """() => {
            window.seen = [];
            const note = () => window.seen.push([document.getElementById('progress').value,
                                                 document.getElementById('stage').textContent]);
            for (const id of ['stage', 'progress-text']) {
                new MutationObserver(note).observe(document.getElementById(id), {childList: true, characterData: true});
            }
        }"""
    )


def wait_completed_and_playable(s: Session) -> dict[str, Any]:
    """Wait for the bar at 100% and the result, then play the <video>: it decodes (H.264) and time advances."""
    s.page.wait_for_function(
        "() => /Status: (completed|failed|cancelled)/.test(document.getElementById('job-status').textContent)",
        timeout=JOB_TIMEOUT_MS,
    )
    status = s.page.text_content("#job-status")
    assert status == "Status: completed", (status, s.page.text_content("#job-error"))
    assert s.page.eval_on_selector("#progress", "p => p.value") == 100
    assert s.page.text_content("#progress-text") == "100%"
    s.page.wait_for_function(
        "() => { const v = document.getElementById('result-video'); return v.readyState >= 2 || v.error }"
    )
    video = s.page.evaluate(
        """async () => {
            const v = document.getElementById('result-video');
            v.muted = true;
            await v.play();
            await new Promise((resolve) => {
                const tick = () => (v.currentTime > 0 ? resolve() : setTimeout(tick, 50));
                tick();
            });
            v.pause();
            return {duration: v.duration, error: v.error && v.error.message, width: v.videoWidth,
                    src: v.currentSrc, download: document.getElementById('download').href, seen: window.seen || []};
        }"""
    )
    s.screenshot("completed")
    assert video["error"] is None and video["duration"] > 0 and video["width"] > 0, video
    assert video["download"] == video["src"] and "/files/jobs/" in video["src"], video
    return video


def file(name: str, mime_type: str, data: bytes) -> dict[str, Any]:
    """A file for a file input, made in the test."""
    return {"name": name, "mimeType": mime_type, "buffer": data}


def png_bytes(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(astronaut(size)[..., ::-1]).save(buffer, format="PNG")
    return buffer.getvalue()


def job_row_status(s: Session, job_id: str) -> str:
    s.page.wait_for_selector(f"#jobs tr[data-job-id='{job_id}']")
    return s.page.text_content(f"#jobs tr[data-job-id='{job_id}'] td.status") or ""


def test_the_pages_are_public_and_carry_security_headers(app_url):
    for path in ("/playground", "/playground/assets/playground.js", "/docs", "/redoc", "/docs/assets/swagger-ui.css"):
        response = httpx.get(app_url + path, timeout=30)  # no key
        assert response.status_code == 200, (path, response.status_code)
        assert response.headers["x-content-type-options"] == "nosniff", path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, (path, policy)
    playground_policy = httpx.get(app_url + "/playground", timeout=30).headers["content-security-policy"]
    assert "unsafe-inline" not in playground_policy, playground_policy
    assert httpx.get(app_url + "/api/v1/jobs", timeout=30).status_code == 401  # the API still needs the key


def test_image_to_video_with_ltx2_from_the_browser(session, app_url):
    s = session
    open_playground(s, app_url)
    choose_model(s, "ltx2")
    s.page.fill("#field-prompt", "the astronaut smiles")
    for name, value in (("width", "64"), ("height", "64"), ("duration", "0.5"), ("fps", "16")):
        s.page.fill(f"#field-{name}", value)
    s.page.set_input_files("#field-image_key", file("face.png", "image/png", png_bytes(64)))
    s.screenshot("filled")
    watch_progress(s)
    s.page.click("#submit")
    wait_for_job(s)
    s.screenshot("running")
    video = wait_completed_and_playable(s)
    assert abs(video["duration"] - 9 / 16) < 0.05, video  # 0.5 s at 16 fps snaps to 9 frames
    # The bar only moves forward and ends full. A fast job may go from queued straight to completed between two
    # events, so a running model's own stage name on the page is checked with a job that waits (the cancel test).
    progress = [value for value, _ in video["seen"]]
    assert progress == sorted(progress) and progress[-1] == 100, video["seen"]
    job_id = s.page.text_content("#job-id")
    assert job_row_status(s, job_id) == "completed"
    poster = f"#jobs tr[data-job-id='{job_id}'] a.frames img.thumb"  # the row's WebP poster, linking the spritesheet
    s.page.wait_for_function(f'() => document.querySelector("{poster}")?.naturalWidth > 0')
    href = s.page.get_attribute(f"#jobs tr[data-job-id='{job_id}'] a.frames", "href") or ""
    assert "spritesheet.jpg" in href, href
    s.log.assert_clean()


def test_lip_sync_with_wav2lip_from_the_browser(session, app_url, tmp_path):
    s = session
    face = write_clip(tmp_path / "face.mp4", [np.roll(astronaut(), shift, axis=1) for shift in range(8)], fps=25)
    open_playground(s, app_url)
    choose_model(s, "wav2lip")
    s.page.set_input_files("#field-video_key", file("face.mp4", "video/mp4", face.read_bytes()))
    s.page.set_input_files("#field-audio_key", file("speech.wav", "audio/wav", wav_bytes(0.48)))
    s.screenshot("filled")
    watch_progress(s)
    s.page.click("#submit")
    video = wait_completed_and_playable(s)
    assert abs(video["duration"] - 0.48) < 0.1, video  # loop mode: as long as the audio
    assert job_row_status(s, s.page.text_content("#job-id")) == "completed"
    s.log.assert_clean()


def test_a_bad_value_shows_the_apis_message_next_to_its_field(session, app_url):
    s = session
    open_playground(s, app_url)
    choose_model(s, "ltx2")
    s.page.fill("#field-prompt", "a red ball")
    s.page.fill("#field-duration", "999")
    s.page.fill("#field-seed", "-1")
    s.page.click("#submit")
    s.page.wait_for_selector("[data-error-for='duration']:not(:empty)")
    s.screenshot("refused")
    assert "less than or equal to 60" in s.page.text_content("[data-error-for='duration']")
    assert "greater than or equal to 0" in s.page.text_content("[data-error-for='seed']")
    assert s.page.text_content("[data-error-for='prompt']") == ""
    assert s.page.is_hidden("#run"), "a refused request must not start following a job"
    s.log.assert_clean(expected_console=re.compile(r"Failed to load resource.*422"))  # Chromium logs each 4xx


def test_a_plugin_models_job_is_cancelled_from_the_page(session, app_url):
    s = session
    open_playground(s, app_url)
    options = s.page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert set(options) == {"ltx2", "wav2lip", "flipbook"}, options  # the plug-in's form, with no page change
    choose_model(s, "flipbook")
    s.page.set_input_files("#field-page_key", file("page.png", "image/png", png_bytes(32)))
    s.page.click("#submit")
    s.page.wait_for_function(
        """() => document.getElementById('stage').textContent === 'waiting for cancel'
                 || [...document.querySelectorAll('.error')].some((e) => e.textContent)
                 || /completed|failed|cancelled/.test(document.getElementById('job-status').textContent)""",
        timeout=JOB_TIMEOUT_MS,
    )
    shown = [
        s.page.text_content("#stage"),
        s.page.text_content("#job-status"),
        *s.page.locator(".error").all_text_contents(),
    ]
    assert shown[0] == "waiting for cancel", shown
    job_id = s.page.text_content("#job-id")
    assert job_row_status(s, job_id) in ("queued", "processing")
    s.screenshot("running")
    s.page.click(f"#jobs tr[data-job-id='{job_id}'] button.cancel")
    s.page.wait_for_function(
        "() => document.getElementById('job-status').textContent === 'Status: cancelled'", timeout=JOB_TIMEOUT_MS
    )
    s.page.wait_for_function(
        f"() => document.querySelector(\"#jobs tr[data-job-id='{job_id}'] td.status\").textContent === 'cancelled'"
    )
    s.screenshot("cancelled")
    assert s.page.is_hidden("#result") and s.page.is_disabled("#cancel")
    s.log.assert_clean()


def test_swagger_ui_and_redoc_render_with_only_the_server_reachable(session, app_url):
    s = session
    s.page.goto(f"{app_url}/docs")
    s.page.wait_for_selector(".opblock-summary-path")
    paths = s.page.eval_on_selector_all(".opblock-summary-path", "ps => ps.map(p => p.textContent)")
    assert {"/api/v1/generate", "/api/v1/jobs/{job_id}/events", "/api/v1/presign/upload"} <= set(paths), paths
    s.screenshot("swagger")
    s.page.goto(f"{app_url}/redoc")
    s.page.wait_for_selector("[data-section-id*='operation/']")
    s.screenshot("redoc", full_page=False)  # the whole page is 12 000 px tall
    operations = s.page.locator("[data-section-id*='operation/']").count()
    assert operations >= len(set(paths)), f"ReDoc lists {operations} operations; Swagger UI {len(set(paths))}"
    s.log.assert_clean()
