"""The console's pages opened from deep links, searched, filtered and paged, in Chromium."""

import re
import subprocess
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Service, snapshot
from tests.browser.records import (
    DEMO_APP,
    DEMO_CONVERSATION,
    DEMO_TURNS,
    EXTERNAL_FILE,
    LONG_CONVERSATION,
    PAGING_APP,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_search_by_conversation_id_opens_the_conversation(open_service: Service, page: Page):
    page.goto(f"{open_service.url}/ui/")
    snapshot(page, "search")
    page.get_by_label("Conversation id or app id").fill(f"  {DEMO_CONVERSATION} ")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{open_service.url}/ui/conversations/{DEMO_CONVERSATION}")
    expect(page.get_by_role("heading", level=1)).to_have_text("耳机退款 · headphone refund")


def test_search_by_anything_else_opens_that_app(open_service: Service, page: Page):
    page.goto(f"{open_service.url}/ui/")
    page.get_by_label("Conversation id or app id").fill(PAGING_APP)
    page.get_by_role("button", name="Open").click()
    expect(page).to_have_url(f"{open_service.url}/ui/apps/{PAGING_APP}")
    expect(page.locator("li.conversation")).to_have_count(20)


def test_app_page_is_newest_first_and_pages_through(open_service: Service, page: Page):
    response = page.goto(f"{open_service.url}/ui/apps/{PAGING_APP}")
    assert response is not None and response.status == 200
    names = page.locator("li.conversation a.name")
    expect(names).to_have_count(20)
    expect(names.first).to_have_text("Paging conversation 24")
    page.get_by_role("link", name="Next page →").click()
    expect(page).to_have_url(re.compile(r"\?cursor="))
    expect(names).to_have_count(5)
    expect(names.last).to_have_text("Paging conversation 00")
    expect(page.get_by_role("link", name="Next page →")).to_have_count(0)
    page.get_by_role("link", name="← First page").click()
    expect(names.first).to_have_text("Paging conversation 24")


def test_user_filter_is_kept_in_the_url(open_service: Service, page: Page):
    page.goto(f"{open_service.url}/ui/apps/{PAGING_APP}")
    page.get_by_label("Filter by user id").fill("user-b")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{open_service.url}/ui/apps/{PAGING_APP}?user_id=user-b")
    items = page.locator("li.conversation")
    expect(items).to_have_count(12)
    snapshot(page, "app-filtered")
    for text in items.all_inner_texts():
        assert "user user-b" in text
    page.reload()  # the filtered list is a deep link too
    expect(items).to_have_count(12)
    page.get_by_role("link", name="Show all users").click()
    expect(items).to_have_count(20)


def test_conversation_deep_link_shows_header_and_chat(open_service: Service, page: Page):
    page.goto(f"{open_service.url}/ui/conversations/{DEMO_CONVERSATION}")
    header = page.locator("dl.header")
    expect(header).to_contain_text(DEMO_APP)
    expect(header).to_contain_text("customer-4821")
    expect(header).to_contain_text("2025-03-01 09:30:00 UTC")
    turns = page.locator("li.turn")
    expect(turns).to_have_count(3)
    first = turns.first
    expect(first.locator(".query .text")).to_have_text(DEMO_TURNS[0]["query"])
    expect(first.locator(".answer .text")).to_have_text(DEMO_TURNS[0]["answer"])
    expect(first).to_contain_text("in-house / qwen2.5-7b-support")
    expect(first).to_contain_text("38 in · 61 out")
    expect(first).to_contain_text("1.284 s")
    expect(first).to_contain_text("0.001980 USD")
    expect(first).to_contain_text("support-001")
    expect(first.get_by_role("link", name=EXTERNAL_FILE)).to_have_attribute("href", EXTERNAL_FILE)
    expect(turns.nth(1).locator("ul.files")).to_contain_text("/srv/uploads/A-7731/invoice.pdf")
    rtl = turns.nth(2).locator(".query .text")
    assert rtl.get_attribute("dir") == "auto"
    assert rtl.evaluate("node => getComputedStyle(node).direction") == "rtl"
    metadata = first.locator("details pre")
    expect(metadata).to_be_hidden()
    first.get_by_text("Metadata and inputs").click()
    expect(metadata).to_contain_text("退款政策 v3")


def test_a_long_conversation_is_paged(open_service: Service, page: Page):
    page.goto(f"{open_service.url}/ui/conversations/{LONG_CONVERSATION}")
    turns = page.locator("li.turn")
    counter = page.locator("p.counter")
    expect(counter).to_have_text("Showing 100 of 2,000 messages, oldest first.")
    expect(turns).to_have_count(100)
    expect(turns.first.locator(".query")).to_contain_text("question 0001")
    more = page.get_by_role("button", name="Show more messages")
    for shown in (200, 300):
        more.click()
        expect(turns).to_have_count(shown)
    expect(counter).to_have_text("Showing 300 of 2,000 messages, oldest first.")
    expect(turns.nth(200)).to_be_focused()  # keyboard users land on the first new message
    expect(turns.nth(299).locator(".query")).to_contain_text("question 0300")


def test_keyboard_alone_reaches_a_conversation(open_service: Service, page: Page):
    page.goto(f"{open_service.url}/ui/")
    expect(page.get_by_label("Conversation id or app id")).to_be_focused()
    page.keyboard.type(DEMO_APP)
    page.keyboard.press("Enter")
    expect(page.locator("li.conversation")).to_have_count(1)
    link = page.get_by_role("link", name="耳机退款 · headphone refund")
    for _ in range(10):
        page.keyboard.press("Tab")
        if link.evaluate("node => node === document.activeElement"):
            break
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{open_service.url}/ui/conversations/{DEMO_CONVERSATION}")


def test_phone_width_needs_no_sideways_scrolling(open_service: Service, context: BrowserContext):
    page = context.new_page()
    page.set_viewport_size({"width": 375, "height": 740})
    for path in (f"apps/{PAGING_APP}", f"conversations/{DEMO_CONVERSATION}"):
        page.goto(f"{open_service.url}/ui/{path}")
        expect(page.locator("main h1")).to_be_visible()
        page.locator("li.conversation, li.turn").first.wait_for()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a phone"
    snapshot(page, "conversation-phone")


def test_screenshot_of_a_conversation(open_service: Service, page: Page):
    """docs/console.png, shown in the README: Chinese, emoji and Arabic in one conversation."""
    page.set_viewport_size({"width": 1000, "height": 900})
    page.goto(f"{open_service.url}/ui/conversations/{DEMO_CONVERSATION}")
    expect(page.locator("li.turn")).to_have_count(3)
    chinese_fonts = subprocess.run(
        ["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=True
    ).stdout
    assert chinese_fonts.strip(), "no Chinese font: make test installs fonts-noto-cjk"
    page.locator("li.turn details").first.evaluate("node => node.open = true")
    page.screenshot(path=DOCS / "console.png", full_page=True)
    assert (DOCS / "console.png").stat().st_size > 50_000
