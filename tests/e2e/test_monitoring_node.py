"""Monitoring a real consortium: `medmesh node run` x 4 plus anvil on 127.0.0.1.

Each node serves ``/metrics`` and its status page on a loopback port it logs (``monitoring``
event). The test reads every node's ``/metrics`` with Prometheus' own text parser after rounds
finalize, then opens hospital-a's status page in Debian's chromium (headless, driven by Selenium
through the system chromedriver), checks that the round counter advances and the plots have
data, that the console has no errors, and saves a screenshot to ``build/test-artifacts/``.
The browser is installed by ``make setup`` (Makefile target ``browser``), never by this test.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from browser_support import headless_chromium, needs_browser
from node_support import SHORT_CAMPAIGN, Pace, running_net
from prometheus_client.parser import text_string_to_metric_families

from node.service.localnet import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

ARTIFACTS = Path(os.environ.get("MEDMESH_TEST_ARTIFACTS", REPO_ROOT / "build" / "test-artifacts"))


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    with running_net(tmp_path_factory.mktemp("nodes"), 20, SHORT_CAMPAIGN) as net:
        yield net


@pytest.fixture(scope="module")
def pace(net) -> Pace:
    pace = Pace(net)
    pace.started()
    return pace


@pytest.fixture(scope="module")
def urls(net, pace) -> dict[str, str]:
    return {
        name: proc.wait_for(lambda e: e["event"] == "monitoring", pace.restart(), "monitoring")[
            "url"
        ]
        for name, proc in net.procs.items()
    }


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as res:
        text = res.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_four_nodes_expose_metrics_prometheus_parses(net, pace, urls):
    for proc in net.procs.values():
        proc.wait_for(
            lambda e: e["event"] == "round_done" and e["round"] == 2 and e["finalized"],
            pace.rounds(2),
            "round 2",
        )
    for name, url in urls.items():
        assert url.startswith("http://127.0.0.1:"), url  # loopback by default
        m = scrape(url)
        joined = m[("medmesh_rounds_joined_total", ())]
        assert joined >= 2 and m[("medmesh_rounds_finalized_total", ())] >= 2
        assert (
            m[("medmesh_rounds_failed_total", ())] + m[("medmesh_rounds_finalized_total", ())]
            <= joined
        )
        for stage in ("train", "verify", "aggregate", "finalize"):
            assert m[("medmesh_round_stage_seconds_count", (("stage", stage),))] >= 2, (name, stage)
        assert 0 < m[("medmesh_epsilon_spent", ())] < m[("medmesh_epsilon_budget", ())] == 1.0
        assert (
            m[("medmesh_bytes_sent_total", ())] > 0 and m[("medmesh_bytes_received_total", ())] > 0
        )
        assert m[("medmesh_peers_connected", ())] == 3
        assert m[("medmesh_chain_seconds_count", (("op", "call"),))] > 0
        assert m[("medmesh_chain_seconds_count", (("op", "commit_update"),))] >= 2
        assert (
            0.5 < m[("medmesh_validation_auc", ())] <= 1.0
        )  # breast-cancer held-out rows of this site
        assert m[("medmesh_alert", (("kind", "anomalous_update"),))] == 0  # four honest hospitals
        assert m[("medmesh_alert", (("kind", "drift"),))] == 0  # rows unchanged since round 1
        assert m[("medmesh_feature_drift_smd", ())] == 0
    for proc in (
        net.procs.values()
    ):  # every rule ran without a fault (drift on the agreed pooled statistics)
        assert proc.find(lambda e: e["event"] == "monitor_error") == []


@needs_browser
def test_status_page_in_headless_chromium(net, urls):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with headless_chromium(1200, 1100) as driver:
        driver.get(urls["hospital-a"])
        wait = WebDriverWait(driver, 120, poll_frequency=0.25)
        counter = lambda: driver.find_element(By.ID, "round").text  # noqa: E731
        first = int(wait.until(lambda d: counter().isdigit() and counter()))
        wait.until(lambda d: counter().isdigit() and int(counter()) > first)
        assert driver.find_element(By.ID, "institution").text == "hospital-a"
        assert driver.find_element(By.ID, "membership").text == "active"
        assert driver.find_element(By.ID, "stage").text in {
            "idle",
            "train",
            "protect",
            "commit",
            "hold",
            "send",
            "verify",
            "aggregate",
            "record_rejections",
            "finalize",
        }
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#eps-plot .point")) >= 2)
        assert driver.find_elements(By.CSS_SELECTOR, "#eps-plot .limit")  # the budget line
        assert len(driver.find_elements(By.CSS_SELECTOR, "#auc-plot .point")) >= 1
        assert len(driver.find_elements(By.CSS_SELECTOR, "#peers tr")) == 3
        assert driver.find_element(By.ID, "alerts").text == "none"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "status-page.png"))
        page = driver.page_source
        assert "BEGIN" not in page and "PRIVATE" not in page  # no key material on the page
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
