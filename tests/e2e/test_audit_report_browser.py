"""The audit's HTML transparency report, opened in a real browser.

A 2-round demo runs on the embedded chain (real EVM, real libp2p, real DP-SGD); ``medmesh audit
report --out DIR`` writes the report in another process; Debian's chromium (headless, Selenium
through the system chromedriver, installed by ``make setup``) opens it from a ``file://`` URL.
The test checks that it renders, that its SVG plots carry data drawn from the chain (one
epsilon point per hospital and round, one accepted-updates bar per hospital), that the
browser console has no errors, and saves a screenshot to ``build/test-artifacts/``. One hospital
records a monitoring alert on chain the node's way (:class:`AlertRecorder`); ``medmesh audit
alerts`` lists it and the report shows its row.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser_support import headless_chromium, needs_browser

from node.monitoring.alerts import Alert
from node.peer.pipeline import HospitalPeer
from node.service.alert_records import AlertRecorder
from node.service.events import EventLog
from node.service.localnet import REPO_ROOT
from node.sim.demo import DemoConfig, run_demo

pytestmark = pytest.mark.slow

ROUNDS = 2
ARTIFACTS = Path(os.environ.get("MEDMESH_TEST_ARTIFACTS", REPO_ROOT / "build" / "test-artifacts"))


ALERT = Alert(
    "accuracy_drop",
    ROUNDS,
    "validation AUC 0.700 is 0.250 below the previous round (0.950)",
    value=0.25,
)


class AlertingPeer(HospitalPeer):
    """A hospital whose monitoring raised an alert in the last round and records it on chain,
    through the node's own path (AlertRecorder, as with ``[monitoring] alerts_on_chain = true``)."""

    recorded: list[str] = []

    async def run_round(self, round_):
        out = await super().run_round(round_)
        if round_ == ROUNDS:
            with open(os.devnull, "w") as sink:
                log = EventLog("hospital-0", stream=sink)
                AlertingPeer.recorded += AlertRecorder(self.ledger, log, None).record(
                    round_, [ALERT]
                )
        return out


@needs_browser
def test_audit_html_report_in_headless_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    state = tmp_path / "chain.json"
    demo = run_demo(
        DemoConfig(rounds=ROUNDS, chain_state=state, progress=False, state_dir=tmp_path / "peers"),
        peer_class={0: AlertingPeer},
    )
    assert len(AlertingPeer.recorded) == 1
    hospitals = len(demo["hospitals"])
    out = tmp_path / "report"
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "node.cli",
            "audit",
            "--chain-state",
            str(state),
            "report",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    page = out / "index.html"
    assert page.is_file() and (out / "audit.json").is_file()
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "node.cli",
            "audit",
            "--chain-state",
            str(state),
            "alerts",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["round"], row["kind"], row["body_hash"]) == (
        ROUNDS,
        "accuracy_drop",
        AlertingPeer.recorded[0],
    )

    with headless_chromium(1200, 1400) as driver:
        driver.get(page.resolve().as_uri())
        assert driver.title == "medmesh transparency report"
        assert driver.find_element(By.TAG_NAME, "h1").text == "medmesh transparency report"
        headings = {h.text for h in driver.find_elements(By.TAG_NAME, "h2")}
        assert {
            "Participants",
            "Rounds",
            "Privacy: epsilon spent per hospital",
            "Credits",
        } <= headings
        assert (
            "checks: " in driver.find_element(By.CSS_SELECTOR, "p.ok").text
        )  # every independent check passed
        # the rounds table has one row per finalized round
        rounds_table = driver.find_element(
            By.XPATH, "//h2[text()='Rounds']/following-sibling::div[1]/table"
        )
        assert len(rounds_table.find_elements(By.CSS_SELECTOR, "tbody tr")) == ROUNDS
        svgs = {s.get_attribute("aria-label"): s for s in driver.find_elements(By.TAG_NAME, "svg")}
        assert {
            "epsilon spent per hospital",
            "accepted updates per hospital",
            "credits held over time",
        } <= set(svgs)
        eps = svgs["epsilon spent per hospital"]
        lines = eps.find_elements(By.TAG_NAME, "polyline")
        assert len(lines) == hospitals
        width, height = float(eps.get_attribute("width")), float(eps.get_attribute("height"))
        for line in lines:  # one vertex per round, inside the drawing area
            pts = [tuple(map(float, p.split(","))) for p in line.get_attribute("points").split()]
            assert len(pts) == ROUNDS and all(0 <= x <= width and 0 <= y <= height for x, y in pts)
        legend = [
            t.text for t in eps.find_elements(By.TAG_NAME, "text") if t.text.startswith("12D3")
        ]
        assert len(legend) == hospitals and all(
            t.endswith(")") for t in legend
        )  # labels not cut short
        assert len(eps.find_elements(By.TAG_NAME, "circle")) == hospitals * ROUNDS
        bars = svgs["accepted updates per hospital"].find_elements(By.TAG_NAME, "rect")
        assert len(bars) == hospitals and all(float(b.get_attribute("width")) > 0 for b in bars)
        assert all(b.size["width"] > 0 for b in bars)  # laid out, not just present in the DOM
        credit_lines = svgs["credits held over time"].find_elements(By.TAG_NAME, "polyline")
        assert len(credit_lines) == hospitals and all(
            re.search(r"\d", c.get_attribute("points")) for c in credit_lines
        )
        # wide tables scroll inside their box; the page itself fits the window
        assert driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
        assert (
            "(none)"
            not in driver.find_element(By.CSS_SELECTOR, "p.ok")
            .find_element(By.XPATH, "following-sibling::*[1]")
            .text
        )  # no empty failed-checks table
        alerts = driver.find_element(
            By.XPATH,
            "//h2[text()='Monitoring alerts recorded on chain']/following-sibling::div[1]/table",
        )
        [cells] = [
            [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in alerts.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]
        assert cells[:2] == [str(ROUNDS), "accuracy_drop"] and AlertingPeer.recorded[0] in cells
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "audit-report.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
