"""Drives headless Chromium (Debian's chromium + chromedriver) against a running, seeded Plumb
and checks what a person would see. Exits non-zero with a message on the first failure.

Checks: every page loads with no console errors; the route timeline shows each lane, a change
marker and an alert interval; hovering a chart shows a tooltip; a span whose prompt is
`<script>alert(1)</script>` shows that text and runs nothing. With --screenshots DIR, saves
PNGs of the main pages there.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.common.exceptions import NoAlertPresentException


def find_binary(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    raise SystemExit(f"none of {names} found: run scripts/setup.sh (it installs Debian's chromium and chromium-driver)")


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = find_binary("chromium", "chromium-browser")
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000"]:
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=find_binary("chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def visit(driver, base, path):
    driver.get(base + path)
    if not driver.find_elements(By.CSS_SELECTOR, "header.top nav"):
        fail(f"{path}: no page shell; body starts: {driver.page_source[:300]}")
    errors = console_errors(driver)
    if errors:
        fail(f"{path}: console errors: {errors}")
    try:
        text = driver.switch_to.alert.text
        fail(f"{path}: a JavaScript alert ran: {text!r}")
    except NoAlertPresentException:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--seed", required=True, help="the JSON line seed_dashboard.py printed")
    ap.add_argument("--screenshots", default=None)
    args = ap.parse_args()
    seed = json.loads(args.seed)
    base = args.url.rstrip("/")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager reach the network
    profile = tempfile.mkdtemp(prefix="plumb-chromium-")
    driver = browser(profile)
    shots = {}
    try:
        # Overview: both seeded routes, the firing alert.
        visit(driver, base, "/")
        routes = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "td.route a")]
        for r in seed["routes"]:
            if r not in routes:
                fail(f"overview lists {routes}, not {r}")
        if not driver.find_elements(By.CSS_SELECTOR, "span.state.firing"):
            fail("overview shows no firing alert")
        shots["overview"] = "/"
        # A route whose name has a slash opens its own timeline.
        driver.find_element(By.LINK_TEXT, "search/embed").click()
        if "search/embed" not in driver.find_element(By.TAG_NAME, "h1").text:
            fail(f"the search/embed link opened {driver.current_url}")
        if console_errors(driver):
            fail(f"search/embed timeline: console errors: {console_errors(driver)}")

        # The timeline: every lane with content, a change marker, an alert interval.
        visit(driver, base, "/routes/chat")
        for lane in ["infra", "decisions", "latency", "evals", "alerts", "changes"]:
            el = driver.find_elements(By.CSS_SELECTOR, f'.lane[data-lane="{lane}"]')
            if not el:
                fail(f"timeline has no {lane} lane")
            if not el[0].find_elements(By.CSS_SELECTOR, "svg.lane-chart"):
                fail(f"timeline's {lane} lane has no chart: {el[0].text!r}")
        markers = driver.find_elements(By.CSS_SELECTOR, '.lane[data-lane="changes"] .change-marker')
        if not markers:
            fail("no change marker on the timeline")
        intervals = driver.find_elements(By.CSS_SELECTOR, '.lane[data-lane="alerts"] rect.alert-interval')
        if not intervals:
            fail("no alert interval on the timeline")
        if intervals[0].size["width"] <= 0:
            fail("the alert interval has no width")
        changes = driver.find_element(By.CSS_SELECTOR, "table.changes").text
        if "llama-3.1-70b" not in changes:
            fail(f"the changes table does not name the new model: {changes!r}")
        # Hover over the latency chart: the tooltip shows the bucket's values.
        chart = driver.find_element(By.CSS_SELECTOR, '.lane[data-lane="latency"] svg.lane-chart')
        ActionChains(driver).move_to_element(chart).perform()
        tip = driver.find_element(By.CSS_SELECTOR, ".timeline .tooltip")
        if not tip.is_displayed() or "requests" not in tip.text:
            fail(f"hovering the chart shows no values: {tip.text!r}")
        shots["timeline"] = "/routes/chat"

        # Trace search, then the trace with the script prompt: shown as text, never run.
        visit(driver, base, "/traces?route=chat")
        if not driver.find_elements(By.CSS_SELECTOR, "table.traces tbody tr"):
            fail("trace search found nothing for route chat")
        shots["traces"] = "/traces?route=chat"
        visit(driver, base, f"/traces/{seed['xss_trace_id']}")
        pre = [p.text for p in driver.find_elements(By.CSS_SELECTOR, ".span-details pre")]
        if "<script>alert(1)</script>" not in pre:
            fail(f"the prompt is not shown as text: {pre}")
        if driver.find_elements(By.XPATH, "//main//script[contains(., 'alert(1)')]"):
            fail("the prompt became a script element")
        visit(driver, base, f"/traces/{seed['long_trace_id']}")
        if "more characters" not in driver.page_source:
            fail("the very long prompt was not clipped")
        shots["trace"] = f"/traces/{seed['long_trace_id']}"

        for path, name in [("/evals", "evals"), ("/alerts", "alerts"),
                           ("/sql?q=SELECT+date_bin(INTERVAL+'5+minutes',+start_time)+AS+t,+count(*)+AS+spans+FROM+spans+GROUP+BY+1+ORDER+BY+1", "sql")]:
            visit(driver, base, path)
            shots[name] = path
        if not driver.find_elements(By.CSS_SELECTOR, ".sql-chart svg"):
            fail("the SQL console drew no chart for a time series")
        visit(driver, base, "/sql?q=DROP+TABLE+spans")
        if "read-only" not in driver.find_element(By.CSS_SELECTOR, ".sql-error").text:
            fail("a refused statement is not explained")

        if args.screenshots:
            os.makedirs(args.screenshots, exist_ok=True)
            for name, path in shots.items():
                driver.get(base + path)
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.set_window_size(1400, min(max(height, 700), 2200))
                driver.save_screenshot(os.path.join(args.screenshots, f"{name}.png"))
                driver.set_window_size(1400, 1000)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print("browser checks passed")


if __name__ == "__main__":
    main()
