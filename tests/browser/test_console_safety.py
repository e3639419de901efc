"""What the console must never do (run stored markup, load from elsewhere, show another app's
data, keep the key beyond the tab) and how it reports bad addresses and API errors."""

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    Route,
    expect,
)

from tests.browser.conftest import ALPHA_KEY, BRAVO_KEY, GAMMA_KEY, Service, snapshot
from tests.browser.records import (
    DEMO_APP,
    DEMO_CONVERSATION,
    XSS_ANSWER,
    XSS_APP,
    XSS_CONVERSATION,
)

# ---- stored markup stays text -------------------------------------------------------------


def test_markup_in_stored_records_is_shown_as_text(open_service: Service, page: Page):
    page.goto(f"{open_service.url}/ui/conversations/{XSS_CONVERSATION}")
    expect(page.locator(".answer .text")).to_have_text(XSS_ANSWER)
    expect(page.locator(".query .text")).to_have_text("<b>is this bold?</b>")
    stray_text = "[...document.querySelector('main').childNodes].some(n => n.nodeType === 3)"
    assert page.evaluate(stray_text) is False
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "<script>window.__xss='name'</script>"
    )
    page.get_by_text("Metadata and inputs").click()
    snapshot(page, "markup-as-text")
    page.goto(f"{open_service.url}/ui/apps/{XSS_APP}")
    expect(page.locator("li.conversation")).to_contain_text("user <b>mallory</b>")
    main = page.locator("main")
    assert main.locator("img, script, b, iframe").count() == 0
    assert page.evaluate("window.__xss") is None


# ---- nothing from elsewhere ---------------------------------------------------------------


def test_the_console_requests_nothing_but_the_service(
    open_service: Service, context: BrowserContext
):
    requested: list[str] = []

    def record(route: Route) -> None:
        requested.append(route.request.url)
        if route.request.url.startswith(open_service.url + "/"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", record)
    page = context.new_page()
    complaints: list[str] = []  # script errors and refusals by the page's security policy

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            complaints.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    for path in ("", f"apps/{DEMO_APP}", f"conversations/{DEMO_CONVERSATION}"):
        page.goto(f"{open_service.url}/ui/{path}")
        page.wait_for_load_state("networkidle")
    expect(page.locator("li.turn")).to_have_count(3)
    outside = [url for url in requested if not url.startswith(open_service.url + "/")]
    assert outside == []
    assert complaints == []
    assert any("/api/chat/conversations?" in url for url in requested)
    assert any(url.endswith("/ui/assets/favicon.svg") for url in requested)


def test_the_page_shell_forbids_other_origins(open_service: Service):
    response = httpx.get(f"{open_service.url}/ui/apps/{DEMO_APP}")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "http" not in response.text.split("<body>")[0]  # no outside URL in the head


# ---- bad addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "title", "explanation"),
    [
        ("conversations/no-such-conversation", "Conversation not found", "no-such-conversation"),
        ("conversations/not%20an%20id!", "This is not a conversation id", "not an id!"),
        ("conversations/health", "This is not a conversation id", "health"),
        ("conversations/", "This is not a conversation id", "1 to 36 letters"),
        ("apps/no-such-app", "App no-such-app", "No conversations found for this app"),
        ("apps/" + "a" * 65, "The service refused this request", "app_id"),
        ("somewhere/else", "Page not found", "three pages"),
    ],
)
def test_bad_addresses_get_a_clear_page(
    open_service: Service, page: Page, path: str, title: str, explanation: str
):
    page.goto(f"{open_service.url}/ui/{path}")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.locator("main")).to_contain_text(explanation)
    snapshot(page, "bad-address-" + re.sub(r"[^a-z]+", "-", path)[:40])


def test_an_unknown_console_address_answers_404(open_service: Service):
    assert httpx.get(f"{open_service.url}/ui/somewhere/else").status_code == 404
    moved = httpx.get(f"{open_service.url}/ui")
    assert moved.status_code == 307 and moved.headers["location"] == "/ui/"


# ---- API errors read as sentences ---------------------------------------------------------


def _listing_status(page: Page, action: Callable[[], None]) -> int:
    """Do ``action`` and return the status of the listing request (with a key) it made."""

    def keyed_listing(response: Response) -> bool:
        request = response.request
        return "/api/chat/conversations?" in request.url and "authorization" in request.headers

    with page.expect_response(keyed_listing) as response:
        action()
    return response.value.status


def test_api_errors_are_readable(troubled_service: Service, page: Page):
    """The key may make two requests a minute (a fixed window, which a slow run may cross: so
    retry until the limit answers) and the database is down."""
    page.goto(f"{troubled_service.url}/ui/apps/gamma-app")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("An API key is needed")
    status = _listing_status(page, lambda: _enter_key(page, GAMMA_KEY))
    for _ in range(6):
        if status == 429:
            break
        assert status == 503
        expect(heading).to_have_text("The service cannot answer right now")
        expect(page.locator("main")).to_contain_text(
            "The database is unavailable; retry later. Try again in 2 seconds."
        )
        snapshot(page, "error-503")
        status = _listing_status(page, page.get_by_role("button", name="Try again").click)
    assert status == 429
    expect(heading).to_have_text("Too many requests")
    expect(page.locator("main")).to_contain_text("Rate limit exceeded")
    snapshot(page, "error-429")


# ---- keys ---------------------------------------------------------------------------------


def _enter_key(page: Page, key: str) -> None:
    field = page.get_by_label("API key")
    assert field.get_attribute("type") == "password"
    field.fill(key)
    page.keyboard.press("Enter")


def test_the_key_prompt_and_where_the_key_is_kept(
    auth_service: Service, browser: Browser, context: BrowserContext, page: Page
):
    page.goto(f"{auth_service.url}/ui/apps/alpha-app")
    expect(page.get_by_role("heading", level=1)).to_have_text("An API key is needed")
    snapshot(page, "key-prompt")
    _enter_key(page, ALPHA_KEY)
    expect(page.locator("li.conversation")).to_contain_text("Secret talk of alpha-app")
    assert page.evaluate("sessionStorage.getItem('chat-ingest.api-key')") == ALPHA_KEY
    assert page.evaluate("document.cookie") == ""
    assert page.evaluate("localStorage.length") == 0
    assert ALPHA_KEY not in page.url
    page.goto(f"{auth_service.url}/ui/conversations/alpha-app-conversation")  # same tab
    expect(page.locator(".answer .text")).to_have_text("private answer of alpha-app")
    assert context.cookies() == []
    other_tab = browser.new_context()
    try:
        fresh = other_tab.new_page()
        fresh.goto(f"{auth_service.url}/ui/conversations/alpha-app-conversation")
        expect(fresh.get_by_role("heading", level=1)).to_have_text("An API key is needed")
    finally:
        other_tab.close()
    page.get_by_role("button", name="Forget key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("An API key is needed")


def test_a_wrong_key_is_refused_with_a_clear_message(auth_service: Service, page: Page):
    page.goto(f"{auth_service.url}/ui/apps/alpha-app")
    _enter_key(page, "not-a-key-of-this-service-at-all")
    expect(page.locator("main")).to_contain_text("The service did not accept this key")
    expect(page.locator("li.conversation")).to_have_count(0)


def _shows_nothing_of_alpha(page: Page) -> None:
    text = page.locator("body").inner_text()
    assert "alpha-app-user" not in text and "private" not in text and "Secret" not in text


def test_another_apps_key_sees_no_data(auth_service: Service, page: Page):
    page.goto(f"{auth_service.url}/ui/apps/alpha-app")
    _enter_key(page, BRAVO_KEY)
    expect(page.get_by_role("heading", level=1)).to_have_text("This key may not read this data")
    _shows_nothing_of_alpha(page)
    snapshot(page, "another-apps-key")
    page.goto(f"{auth_service.url}/ui/conversations/alpha-app-conversation")
    expect(page.get_by_role("heading", level=1)).to_have_text("Conversation not found")
    _shows_nothing_of_alpha(page)
    page.goto(f"{auth_service.url}/ui/")
    page.get_by_label("Conversation id or app id").fill("alpha-app-conversation")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{auth_service.url}/ui/apps/alpha-app-conversation")
    expect(page.get_by_role("heading", level=1)).to_have_text("This key may not read this data")
    _shows_nothing_of_alpha(page)
    page.goto(f"{auth_service.url}/ui/apps/bravo-app")  # its own app still works
    expect(page.locator("li.conversation")).to_contain_text("Secret talk of bravo-app")
