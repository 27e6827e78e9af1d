"""The journey in a real browser: an experiment's lineage and checks, a run launched from the Dagster UI, its model in MLflow."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from ok_ml_assets.orchestration import run_experiments
from ok_ml_assets.settings import PROJECT_ROOT, Settings, load_settings
from tests.conftest import write_config
from tests.integration.test_model_lifecycle import free_port
from tests.integration.test_tabular_classification_graph import NAME, antispam_config

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(420)]
MODULE = "ok_ml_assets.definitions"
BIN = Path(sys.executable).parent
ASSETS = ("examples", "labelled_examples", "dataset_split", "trained_model", "model_promotion", "predictions", "published_predictions")
UI_TIMEOUT_MS = 60_000
SERVER_START_S = 120
RUN_S = 180
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def chromium_path() -> str | None:
    """Debian's Chromium, or the one $OK_ML_CHROMIUM names."""
    candidates = (os.environ.get("OK_ML_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"))
    return next((path for path in candidates if path and os.access(path, os.X_OK)), None)


@pytest.fixture
def chromium() -> str:
    """The browser to drive: without one the test skips, but on CI it fails."""
    path = chromium_path()
    if path is None:
        reason = "no Chromium at /usr/bin/chromium or $OK_ML_CHROMIUM: `make chromium` installs Debian's"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def artifacts(capsys) -> Path:
    """Screenshots, page HTML and server logs of this test, kept after it."""
    directory = Path(os.environ.get("OK_ML_ARTIFACTS_DIR") or PROJECT_ROOT / "test-artifacts" / "browser") / "ui_journey"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    with capsys.disabled():
        print(f"\nbrowser test artifacts: {directory}")
    return directory


@pytest.fixture
def world(chromium, home, monkeypatch) -> Settings:
    """The tiny home with antispam_bots run once in-process, its links pointing at this test's UIs."""
    # The daemon's registry sensor would start prod_discovery's runs for the registered world it never materialized.
    (home / "configs" / "prod_discovery.yml").unlink()
    write_config(home, antispam_config())
    monkeypatch.setenv("OK_ML_DAGSTER_UI_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OK_ML_MLFLOW_UI_URL", f"http://127.0.0.1:{free_port()}")
    settings = load_settings()
    assert run_experiments(settings, preset="tiny", seed=7, experiments=[NAME])[NAME].success
    return settings


def port(url: str) -> str:
    """The port of a URL served on 127.0.0.1."""
    return url.rsplit(":", 1)[1]


def tail(log: Path, lines: int = 40) -> str:
    """The end of a server log, for a failure message."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen) -> None:
    """Stop a server's whole process group: politely, then for good."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(20)
    deadline = time.monotonic() + 10
    # The leader can exit before what it started (code servers, the uvicorn worker): give them time, then kill them.
    with contextlib.suppress(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(process.pid, 0)
            time.sleep(0.2)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@contextlib.contextmanager
def server(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A server in its own process group, logging to a file, always stopped with everything it started."""
    # MLflow's job runner would start seven task consumers this test never uses.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            stop(process)


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait until a server answers 200 at the URL, failing with its log if it exits or takes too long."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{log.stem} exited with {process.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"{log.stem} did not answer {url} within {SERVER_START_S} s:\n{tail(log)}")


@pytest.fixture
def uis(world, artifacts) -> Iterator[Settings]:
    """The Dagster webserver and daemon (the instance queues launched runs) and the MLflow UI over the test's stores."""
    dagster, mlflow = world.dagster_ui_url, world.mlflow_ui_url
    commands = {
        "dagster-webserver": [str(BIN / "dagster-webserver"), "-m", MODULE, "-h", "127.0.0.1", "-p", port(dagster)],
        "dagster-daemon": [str(BIN / "dagster-daemon"), "run", "-m", MODULE],
        "mlflow-ui": [str(BIN / "mlflow"), "ui", "--backend-store-uri", world.mlflow_tracking_uri,
                      "-h", "127.0.0.1", "-p", port(mlflow), "--workers", "1"],
    }
    with contextlib.ExitStack() as stack:
        running = {name: stack.enter_context(server(command, artifacts / f"{name}.log")) for name, command in commands.items()}
        wait_until_up(f"{dagster}/server_info", running["dagster-webserver"], artifacts / "dagster-webserver.log")
        wait_until_up(f"{mlflow}/health", running["mlflow-ui"], artifacts / "mlflow-ui.log")
        yield world


@pytest.fixture
def page(chromium) -> Iterator[Page]:
    """A headless Chromium page with generous, bounded waits."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)
            # Dagster invites newcomers to its community in a modal that opens a second after any page loads on
            # 127.0.0.1, and can swallow a click made meanwhile; a browser that once dismissed it never sees it again.
            page.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
            page.add_locator_handler(page.get_by_text("Join the Dagster community"),
                                     lambda _: page.get_by_role("button", name="Skip").click())
            yield page
        finally:
            browser.close()


class Screenshots:
    """A numbered screenshot of each step; on failure a last one and the page's HTML."""

    def __init__(self, page: Page, directory: Path):
        self.page, self.directory, self.taken = page, directory, 0

    def take(self, step: str) -> None:
        """Save the page as it is now."""
        self.taken += 1
        self.page.screenshot(path=self.directory / f"{self.taken:02d}-{step}.png", full_page=True)

    @contextlib.contextmanager
    def on_failure(self) -> Iterator[None]:
        """Keep what the browser showed when a step failed."""
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.take("failure")
                (self.directory / "failure.html").write_text(self.page.content())
            raise


def run_status(dagster: str, run_id: str) -> str:
    """A run's status from the Dagster GraphQL API."""
    query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
    body = json.dumps({"query": query, "variables": {"id": run_id}}).encode()
    request = urllib.request.Request(f"{dagster}/graphql", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]["runOrError"].get("status", "")


def wait_for_run(dagster: str, run_id: str) -> str:
    """Wait until a run finished (the daemon dequeues and launches it) and return its status."""
    deadline = time.monotonic() + RUN_S
    while (status := run_status(dagster, run_id)) not in FINISHED and time.monotonic() < deadline:
        time.sleep(1)
    return status


def open_lineage(page: Page, dagster: str) -> None:
    """The experiment's asset group as a lineage graph."""
    selection = quote(f'group:"{NAME}"')
    page.goto(f"{dagster}/asset-groups~{selection}")
    for asset in ASSETS:
        expect(page.get_by_text(asset, exact=True).first).to_be_visible()


def open_checks(page: Page, dagster: str, asset: str, check: str) -> None:
    """An asset's page, on its Checks tab, listing one of its checks as succeeded."""
    page.goto(f"{dagster}/assets/{NAME}/{asset}")
    tab = page.get_by_role("tab", name="Checks")
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")
    expect(page.get_by_text(check, exact=True).first).to_be_visible()
    expect(page.get_by_text("Succeeded").first).to_be_visible()


def materialize(page: Page, asset: str) -> str:
    """Click Materialize on the open page of an asset, follow the launched run to its page and return its id."""
    page.get_by_role("button", name=re.compile(r"\bMaterialize$")).click()
    expect(page.get_by_text(re.compile(r"Launched run"))).to_be_visible()
    page.get_by_role("link", name="View").or_(page.get_by_role("button", name="View")).first.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    expect(page.get_by_text(f"{NAME} / {asset}").first).to_be_visible()
    return re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)


def model_version_link(page: Page, dagster: str, mlflow: str) -> str:
    """The `mlflow_model_version` link in the metadata of `trained_model`."""
    page.goto(f"{dagster}/assets/{NAME}/trained_model")
    link = page.get_by_role("row").filter(has_text="mlflow_model_version").get_by_role("link").first
    expect(link).to_have_attribute("href", f"{mlflow}/#/models/{NAME}/versions/1")
    return link.get_attribute("href")


def back_to_the_training_run(page: Page, dagster: str) -> None:
    """From the MLflow model version, the link in its description to the Dagster run that trained it."""
    link = page.get_by_role("link", name=re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")).first
    expect(link).to_have_attribute("href", re.compile(rf"^{re.escape(dagster)}/runs/"))
    page.goto(link.get_attribute("href"))
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    expect(page.get_by_text("trained_model").first).to_be_visible()


def test_the_journey_from_lineage_to_the_registered_model(uis, page, artifacts):
    dagster, mlflow = uis.dagster_ui_url, uis.mlflow_ui_url
    shots = Screenshots(page, artifacts)
    with shots.on_failure():
        open_lineage(page, dagster)
        shots.take("lineage")
        open_checks(page, dagster, "labelled_examples", "label_index_mean_between")
        shots.take("checks")
        run_id = materialize(page, "labelled_examples")
        shots.take("run-launched")
        status = wait_for_run(dagster, run_id)
        assert status == "SUCCESS", f"{dagster}/runs/{run_id} ended {status!r}; server logs in {artifacts}"
        expect(page.get_by_text("Success", exact=True).first).to_be_visible()
        shots.take("run-succeeded")
        href = model_version_link(page, dagster, mlflow)
        shots.take("trained-model")
        page.goto(href)
        expect(page).to_have_title(re.compile(rf"{NAME} v1"))
        expect(page.get_by_text("Version 1", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name=NAME, exact=True)).to_be_visible()
        expect(page.get_by_text(f"{dagster}/runs/")).to_be_visible()
        shots.take("mlflow-model-version")
        back_to_the_training_run(page, dagster)
        shots.take("dagster-training-run")
