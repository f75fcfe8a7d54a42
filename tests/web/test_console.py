"""The web console in a real browser: Playwright driving Debian's Chromium against a real server."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.conftest import wait_until
from tests.support.keys import make_key, secret_of
from tests.support.server import REPO_ROOT, Server, free_port, uvicorn_server

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
# The machine's network is closed: keep Chromium from reaching out on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("console")
    shutil.copytree(REPO_ROOT / "documents", root / "documents")
    with uvicorn_server(
        root, pipeline="tests.support.pipelines:console_pipeline", poll_interval_s="1"
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def ask(page: Page, server: Server, question: str, sql: bool = False) -> str:
    page.goto(server.url)
    page.fill("#question", question)
    if sql:
        page.click(".options summary")
        page.check("#enable_sql")
    page.click("#ask-button")
    page.wait_for_url("**/runs/*")
    return page.url.rsplit("/", 1)[1]


def test_a_question_runs_to_a_cited_answer_with_browsable_evidence(page: Page, server: Server) -> None:
    run_id = ask(page, server, "What are main climate initiatives?")
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#progress-text")).to_contain_text("done (100%)")
    answer = page.locator("#answer")
    expect(answer).to_contain_text("Renewable Power Programme")
    first_citation = answer.locator("a.cite").first
    expect(first_citation).to_have_attribute("href", "#evidence-1")
    expect(page.locator("#evidence-1 summary")).to_contain_text("documents/climate-strategy-overview.md")
    first_citation.click()  # a citation opens its passage
    expect(page.locator("#evidence-1 pre")).to_be_visible()
    expect(page.locator("#evidence-1 pre")).to_contain_text("main climate initiatives")
    listed = page.locator(f'#runs li[data-run-id="{run_id}"]')
    expect(listed.locator(".badge")).to_have_text(re.compile("completed"), timeout=TIMEOUT_MS)
    expect(listed.locator("a")).to_have_text("What are main climate initiatives?")  # by question
    expect(page).to_have_title("What are main climate initiatives? · Runlane")
    screenshot(page, "console-completed")


def test_sql_rows_and_gaps_are_shown(page: Page, server: Server) -> None:
    ask(
        page,
        server,
        "What is the offshore wind capacity target? What is the price of bananas in Tokyo?",
        sql=True,
    )
    expect(page.locator("#run-status")).to_have_text("completed with gaps")
    expect(page.locator("#gaps")).to_contain_text("price of bananas in Tokyo")
    expect(page.locator("#sql")).to_contain_text("offshore wind capacity")
    expect(page.locator("#sql table").first).to_be_visible()


def test_a_slow_run_can_be_cancelled(page: Page, server: Server) -> None:
    ask(page, server, "Please take a slow walk through everything")
    expect(page.locator("#run-status")).to_have_text("running")
    expect(page.locator("#progress-text")).to_contain_text("working slowly")
    page.click("#cancel-button")
    expect(page.locator("#run-status")).to_have_text("stopped")
    expect(page.locator("#run-why")).to_have_text("Stopped: cancelled")
    expect(page.locator("#cancel-button")).to_be_hidden()
    # Where it ended, not a bar frozen part-way; its partial answer says it is partial.
    expect(page.locator("#progress-text")).to_have_text("stopped during load")
    expect(page.locator("#progress-fill")).to_have_class("fill ended")
    expect(page.locator("#answer")).to_contain_text("The first part of an answer")
    expect(page.locator("#partial")).to_be_visible()
    screenshot(page, "console-cancelled")


def test_a_failed_run_shows_why(page: Page, server: Server) -> None:
    ask(page, server, "Please explode")
    expect(page.locator("#run-status")).to_have_text("failed")
    expect(page.locator("#run-why")).to_contain_text(
        "RuntimeError: the console test asked this run to explode"
    )


def test_a_run_opens_from_its_own_url_and_survives_a_reload(page: Page, server: Server) -> None:
    created = httpx.post(
        f"{server.url}/api/v1/runs", json={"question": "What are the recycling targets?"}
    ).json()
    page.goto(f"{server.url}/runs/{created['run_id']}")
    expect(page.locator("#run-title")).to_have_text(created["run_id"])
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#run-question")).to_have_text("What are the recycling targets?")
    page.reload()
    expect(page.locator("#answer")).to_contain_text("65%")
    page.goto(f"{server.url}/runs/not-a-run")
    expect(page.locator("#run-status")).to_have_text("not found")


def test_recent_runs_are_paged_and_openable(page: Page, server: Server) -> None:
    for i in range(12):
        httpx.post(
            f"{server.url}/api/v1/runs",
            json={"question": f"Recycling targets {i}?", "run_id": f"paged-{i:02d}"},
        )
    page.goto(server.url)
    expect(page.locator("#runs li")).to_have_count(10)
    page.click("#more-runs")
    expect(page.locator("#runs li")).not_to_have_count(10)
    page.locator("#runs a", has_text="Recycling targets 11?").click()
    expect(page).to_have_url(f"{server.url}/runs/paged-11")
    expect(page.locator("#run-title")).to_have_text("paged-11")


def test_the_console_fits_a_phone_screen(browser: Browser, server: Server) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    phone = context.new_page()
    ask(phone, server, "How are cities increasing tree canopy?")
    expect(phone.locator("#run-status")).to_have_text("completed")
    overflow = phone.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(phone, "console-phone")
    context.close()


def test_markup_inside_documents_is_shown_as_text_never_run(page: Page, server: Server) -> None:
    hostile = server.log.parent / "documents" / "hostile"
    hostile.mkdir()
    (hostile / "evil.md").write_text(
        '# Solar hostile heading\n\nSolar panels <img src=x onerror="window.injected=1"> '
        "and <script>window.injected=2</script> solar subsidies.\n"
    )
    page.goto(server.url)
    page.fill("#question", "What about solar hostile subsidies?")
    page.click(".options summary")
    page.fill("#markdown_path", "documents/hostile")
    page.click("#ask-button")
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#answer")).to_contain_text("<script>window.injected=2</script>")
    assert page.evaluate("window.injected") is None
    assert page.locator("#answer script, #answer img").count() == 0


def test_with_keys_on_the_console_asks_for_a_key_once_per_tab(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("console-keys")
    shutil.copytree(REPO_ROOT / "documents", root / "documents")
    _, key = make_key(root / "output", "console")
    with uvicorn_server(root, auth="api-key", poll_interval_s="1") as keyed:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        urls: list[str] = []
        page.on("request", lambda request: urls.append(request.url))
        page.goto(keyed.url)
        expect(page.locator("#key-card")).to_be_visible()
        page.fill("#api-key", key[:-3] + "xyz")
        page.click("#key-button")
        expect(page.locator("#key-error")).to_contain_text("unknown or revoked")
        page.fill("#api-key", key)
        page.click("#key-button")
        expect(page.locator("#key-card")).to_be_hidden()
        run_id = ask(page, keyed, "What are main climate initiatives?")
        expect(page.locator("#run-status")).to_have_text("completed")
        page.reload()
        expect(page.locator(f'#runs li[data-run-id="{run_id}"]')).to_be_visible()  # the tab kept its key
        expect(page.locator("#key-card")).to_be_hidden()
        assert page.evaluate("sessionStorage.getItem('runlane.apiKey')") == key
        assert not any(key in url or secret_of(key) in url for url in urls)
        context.close()
        other_tab = browser.new_context().new_page()  # a new session knows no key
        other_tab.goto(keyed.url)
        expect(other_tab.locator("#key-card")).to_be_visible()
        other_tab.context.close()


def test_the_console_survives_the_server_dying_and_coming_back(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("console-restart")
    shutil.copytree(REPO_ROOT / "documents", root / "documents")
    port = free_port()
    settings = {"pipeline": "tests.support.pipelines:console_pipeline", "poll_interval_s": "1"}
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with uvicorn_server(root, port=port, **settings) as first:
        ask(page, first, "Please take a slow walk through everything")
        expect(page.locator("#run-status")).to_have_text("running")
        # Its first progress report is on disk: the run is killed part-way through a stage.
        expect(page.locator("#progress-text")).to_contain_text("working slowly", timeout=TIMEOUT_MS)
        first.kill()
        expect(page.locator("#connection")).to_be_visible()
        expect(page.locator("#connection")).to_contain_text("retrying")
        screenshot(page, "console-connection-lost")
    with uvicorn_server(root, port=port, **settings):
        # The run's server died under it: the next one fails it `interrupted`, and says where.
        expect(page.locator("#connection")).to_be_hidden()
        expect(page.locator("#run-status")).to_have_text("failed")
        expect(page.locator("#progress-text")).to_have_text("failed during load")
        expect(page.locator("#run-why")).to_contain_text("Interrupted")
    assert errors == []  # no uncaught "Failed to fetch"
    context.close()


def test_a_success_cut_off_part_way_reads_as_a_lost_connection(page: Page, server: Server) -> None:
    """A server killed while it answers can leave a 200 with half a body: the console treats
    it as the connection it is, and the next refresh shows the list."""
    httpx.post(f"{server.url}/api/v1/runs", json={"question": "Cut off?", "run_id": "cut-off"})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    answered: list[int] = []

    def half_the_first(route: Route) -> None:
        answered.append(1)
        if len(answered) == 1:
            route.fulfill(status=200, content_type="application/json", body='{"runs": [{"run_id": "cu')
        else:
            route.continue_()

    page.route("**/api/v1/runs?*", half_the_first)
    page.goto(server.url)
    expect(page.locator("#runs a", has_text="Cut off?")).to_be_visible(timeout=TIMEOUT_MS)  # refreshed 5 s on
    assert len(answered) >= 2
    assert errors == []


def test_a_wide_table_scrolls_at_phone_width_with_words_and_figures_whole(
    browser: Browser, server: Server
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    phone = context.new_page()
    ask(phone, server, "Please draw a table of budgets")
    expect(phone.locator("#run-status")).to_have_text("completed")
    scroller = phone.locator("#answer .table-scroll")
    expect(scroller).to_be_visible()
    assert scroller.evaluate("node => node.scrollWidth > node.clientWidth")  # it scrolls sideways
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the page does not
    for text in ("2026", "6,250,000", "Renewable Power Programme 5"):
        cell = phone.locator("#answer td", has_text=text).first
        lines = cell.evaluate(
            "td => { const r = document.createRange(); r.selectNodeContents(td); "
            "return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }"
        )
        assert lines == 1, text  # never "202 6" or "Renewab le"
    screenshot(phone, "console-table-phone")
    context.close()


def _luminance(css: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"[\d.]+", css)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def test_every_status_badge_has_text_contrast_of_at_least_4_5(page: Page, server: Server) -> None:
    page.goto(server.url)
    statuses = ["queued", "running", "completed", "completed_with_gaps", "failed", "stopped"]
    colours = page.evaluate(
        """statuses => statuses.map(status => {
            const badge = document.createElement("span");
            badge.className = `badge ${status}`;
            badge.textContent = status;
            document.body.append(badge);
            const style = getComputedStyle(badge);
            return [style.color, style.backgroundColor];
        })""",
        statuses,
    )
    for status, (text, background) in zip(statuses, colours, strict=True):
        lighter, darker = sorted((_luminance(text), _luminance(background)), reverse=True)
        ratio = (lighter + 0.05) / (darker + 0.05)
        assert ratio >= 4.5, (status, text, background, round(ratio, 2))


def test_a_keyboard_alone_asks_and_follows_a_run_announced_to_screen_readers(
    page: Page, server: Server
) -> None:
    page.goto(server.url)
    assert page.locator("h1").count() == 1
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "question":
            break
    assert page.evaluate("document.activeElement.id") == "question"
    page.keyboard.type("What are the recycling targets?")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/runs/*")
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page).to_have_title("What are the recycling targets? · Runlane")
    bar = page.locator("[role=progressbar]")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(bar).to_have_attribute("aria-valuetext", "done (100%)")
    expect(page.locator("#progress-text")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#run-status")).to_have_attribute("role", "status")
    assert page.locator("h1").count() == 1  # the answer's own headings moved down a level


def test_validation_errors_stand_next_to_their_field_in_plain_words(page: Page, server: Server) -> None:
    page.goto(server.url)
    page.fill("#question", "What are the recycling targets?")
    page.click(".options summary")
    page.fill("#run_id", "not a valid id!")
    page.click("#ask-button")
    error = page.locator("#run_id-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(re.compile(r"^run_id must be 1 to 128 characters"))
    expect(error).not_to_contain_text("Value error")
    expect(page.locator("#run_id")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#ask-error")).to_be_hidden()


def test_the_list_filters_by_status_says_when_empty_and_offers_only_working_options(
    page: Page, server: Server
) -> None:
    done = httpx.post(f"{server.url}/api/v1/runs", json={"question": "What is funded?"}).json()
    status_url = f"{server.url}{done['status_url']}"
    wait_until(lambda: httpx.get(status_url).json()["status"] == "completed")
    page.goto(server.url)
    page.select_option("#status-filter", "queued")
    expect(page.locator("#runs-empty")).to_have_text("No queued runs.")
    page.select_option("#status-filter", "completed")
    expect(page.locator("#runs li").first).to_be_visible()
    for badge in page.locator("#runs li .badge").all():
        expect(badge).to_have_text("completed")
    page.select_option("#status-filter", "")
    created = httpx.post(f"{server.url}/api/v1/runs", json={"question": "A run made elsewhere?"}).json()
    listed = page.locator(f'#runs li[data-run-id="{created["run_id"]}"]')
    expect(listed).to_be_visible(timeout=TIMEOUT_MS)  # the list follows runs without a click on Refresh
    expect(listed.locator(".badge")).to_have_text(re.compile("completed"), timeout=TIMEOUT_MS)
    expect(page.locator("#llm-options")).to_be_hidden()  # no LLM configured: nothing to log
    expect(page.locator("#writer-in-use")).to_contain_text("extractive writer")


def test_a_finished_run_is_regenerated_with_feedback_from_the_console(page: Page, server: Server) -> None:
    parent = ask(page, server, "What are main climate initiatives?")
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#answer")).to_contain_text("methane reduction")
    page.fill("#feedback", "leave out methane")
    page.click("#regenerate-button")
    expect(page).not_to_have_url(f"{server.url}/runs/{parent}")
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#answer")).to_contain_text("Renewable Power Programme")
    expect(page.locator("#answer")).not_to_contain_text("Methane")
    expect(page.locator("#lineage")).to_contain_text(f"Regenerated from {parent} with feedback")
    page.locator("#lineage a", has_text=parent).click()
    expect(page.locator("#run-title")).to_have_text(parent)
    expect(page.locator("#lineage")).to_contain_text("Regenerated as ")
    page.fill("#feedback", " ")
    page.click("#regenerate-button")
    expect(page.locator("#feedback-error")).to_contain_text("feedback must contain text")


def test_a_section_is_edited_with_a_safe_preview_and_versions_can_be_switched(
    page: Page, server: Server
) -> None:
    ask(page, server, "What is the offshore wind target, and when are the auction rounds?")
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#work")).to_be_visible()
    page.click("#edit-box summary")
    page.select_option("#edit-section", label="When are the auction rounds")
    expect(page.locator("#edit-content")).to_have_value(re.compile("three auction rounds"))
    page.fill(
        "#edit-content",
        "- Auctions run in 2026, 2028 and 2030. [1]\n- <img src=x onerror=alert(1)> Bidders love them. [42]"
        "\n- Nobody has ever doubted these dates.",
    )
    page.click("#preview-button")
    preview = page.locator("#edit-preview")
    expect(preview).to_contain_text("Auctions run in 2026, 2028 and 2030.")
    expect(preview.locator("img")).to_have_count(0)  # raw HTML never passes
    expect(page.locator("#preview-uncited")).to_contain_text("Nobody has ever doubted these dates.")
    expect(page.locator("#answer")).not_to_contain_text("Auctions run in")  # a preview saves nothing
    page.click("#save-edit")
    expect(page.locator("#answer")).to_contain_text("Auctions run in 2026, 2028 and 2030.")
    expect(page.locator("#version-select")).to_have_value("2")
    expect(page.locator("#version-select option")).to_have_count(2)
    expect(page.locator("#uncited")).to_contain_text("Nobody has ever doubted these dates.")
    expect(page.locator("#uncited")).to_contain_text("cite evidence this run does not have: [42]")
    page.select_option("#version-select", "1")
    expect(page.locator("#answer")).to_contain_text("tendered in three auction rounds")
    expect(page.locator("#answer")).not_to_contain_text("Auctions run in")
    expect(page.locator("#version-note")).to_have_text("Showing version 1; the latest is 2.")
    expect(page.locator("#save-edit")).to_be_disabled()
    page.select_option("#version-select", "2")
    expect(page.locator("#answer")).to_contain_text("Auctions run in")
    page.select_option("#note-section", label="What is the offshore wind target")
    page.fill("#note-text", "Check the 2032 date with the agency.")
    page.click("#add-note")
    note = page.locator("#notes li")
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Check the 2032 date with the agency.")
    page.click("#notes li button")
    expect(page.locator("#notes li")).to_have_count(0)
    screenshot(page, "console-edited")


def test_regenerating_an_edited_answer_asks_first(page: Page, server: Server) -> None:
    parent = ask(page, server, "What is the offshore wind capacity target?")
    expect(page.locator("#run-status")).to_have_text("completed")
    page.click("#edit-box summary")
    page.fill("#edit-content", "- The target is 3.5 gigawatts by 2032. [1]")
    page.click("#save-edit")
    expect(page.locator("#version-select")).to_have_value("2")
    page.fill("#feedback", "focus on auctions")
    page.click("#regenerate-button")
    warning = page.locator("#regenerate-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("“What is the offshore wind capacity target?”")
    expect(page).to_have_url(f"{server.url}/runs/{parent}")  # nothing started yet
    page.click("#regenerate-keep")
    expect(warning).to_be_hidden()
    page.click("#regenerate-button")
    page.click("#regenerate-force")
    expect(page).not_to_have_url(f"{server.url}/runs/{parent}")
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#lineage")).to_contain_text(f"Regenerated from {parent} with feedback")
