import base64

from odoo.tests import HttpCase, tagged

from .common import PDF_BYTES, require_browser

# Click through every tab of the form, then report. Any JS error in the client fails the test.
CLICK_ALL_TABS = """
const deadline = Date.now() + 30000;
let tab = 0;
function step() {
    const tabs = document.querySelectorAll('.o_form_view .o_notebook .nav-link');
    if (!tabs.length) {
        if (Date.now() > deadline) { console.error('the chatbot form did not render'); return; }
        return setTimeout(step, 200);
    }
    if (tab < tabs.length) {
        tabs[tab++].click();
        return setTimeout(step, 300);
    }
    const widgetTab = [...tabs].find((t) => t.textContent.trim() === 'Widget');
    if (!widgetTab) { console.error('no Widget tab'); return; }
    widgetTab.click();
    setTimeout(() => {
        if (document.querySelector('.o_field_CopyClipboardChar')) { console.log('test successful'); }
        else { console.error('the embed snippet copy field is missing'); }
    }, 500);
}
step();
"""


# New API key -> Generate -> the key is revealed once, with a copy button, and the dialog closes.
GENERATE_AND_REVEAL_KEY = """
const deadline = Date.now() + 30000;
function waitFor(find, then) {
    const el = find();
    if (el) { return then(el); }
    if (Date.now() > deadline) { console.error('timed out at: ' + find); return; }
    setTimeout(() => waitFor(find, then), 200);
}
waitFor(() => document.querySelector('.o_form_view button[name="action_new_api_key"]'), (button) => {
    button.click();
    waitFor(() => document.querySelector('.modal button[name="action_generate"]'), (generate) => {
        generate.click();
        waitFor(() => [...document.querySelectorAll('.modal .o_field_CopyClipboardChar')]
                .find((f) => f.textContent.includes('cbp_pk_') || (f.querySelector('input') || {}).value?.startsWith('cbp_pk_')),
            () => {
                const copy = document.querySelector('.modal .o_field_CopyClipboardChar .o_clipboard_button');
                if (!copy) { console.error('no copy button next to the key'); return; }
                document.querySelector('.modal footer .btn-primary').click();
                waitFor(() => !document.querySelector('.modal'), () => console.log('test successful'));
            });
    });
});
"""


def wait_for(selector):
    return """
const deadline = Date.now() + 30000;
(function check() {
    if (document.querySelector(%r)) { console.log('test successful'); }
    else if (Date.now() > deadline) { console.error('not rendered: ' + %r); }
    else { setTimeout(check, 200); }
})();
""" % (selector, selector)


@tagged("post_install", "-at_install")
class TestWebClient(HttpCase):
    """The addon's views render in the real web client (skipped without Chrome/websocket-client)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bot = cls.env["chatbot.chatbot"].create({"name": "Rendered bot", "allowed_domains": "example.com"})
        cls.env["chatbot.document"].create(
            {"chatbot_id": cls.bot.id, "filename": "manual.pdf", "datas": base64.b64encode(PDF_BYTES)}
        )
        cls.env["chatbot.link"].create({"chatbot_id": cls.bot.id, "url": "https://example.com/docs"})
        cls.env["chatbot.api.key"]._generate(cls.bot, "publishable", "Widget")

    def setUp(self):
        super().setUp()
        require_browser(self)

    def test_chatbot_form_tabs_render(self):
        url = "/odoo/action-chatbot_platform.chatbot_action/%d" % self.bot.id
        self.browser_js(url, CLICK_ALL_TABS, login="admin", timeout=90)

    def test_new_key_is_revealed_once_in_the_browser(self):
        url = "/odoo/action-chatbot_platform.chatbot_action/%d" % self.bot.id
        self.browser_js(url, GENERATE_AND_REVEAL_KEY, login="admin", timeout=90)
        keys = self.env["chatbot.api.key"].search([("chatbot_id", "=", self.bot.id), ("kind", "=", "publishable")])
        self.assertEqual(len(keys), 2, "the dialog created one more key")
        reveals = self.env["chatbot.api.key.reveal"].search([])
        self.assertFalse(reveals.filtered("plain_key"), "the revealed key was stored")

    def test_list_and_kanban_views_render(self):
        for url, selector in (
            ("/odoo/action-chatbot_platform.chatbot_action", ".o_kanban_view .o_kanban_record"),
            ("/odoo/action-chatbot_platform.chatbot_document_action", ".o_list_view .o_data_row"),
            ("/odoo/action-chatbot_platform.chatbot_link_action", ".o_list_view .o_data_row"),
            ("/odoo/action-chatbot_platform.chatbot_api_key_action", ".o_list_view .o_data_row"),
            ("/odoo/action-chatbot_platform.chatbot_outbox_action", ".o_list_view"),
        ):
            with self.subTest(url=url):
                self.browser_js(url, wait_for(selector), login="admin", timeout=90)
