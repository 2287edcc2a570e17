/** @odoo-module **/
// Tours for tests/test_live_status_browser.py: an open list or form follows the engine's status
// callbacks (pushed on the bus, static/src/js/live_status.js) without a reload.
// A step that logs "chatbot-live:<signal>" hands over to the Python test, which then changes the
// source on the server (the signed engine callback) and wakes the bus; the next step waits for the
// new state to appear. A marker on `window` proves that the page was never reloaded.
import { registry } from "@web/core/registry";

const SLOW = 60000; // each step's wait (the server's push; a loaded machine)
const MARK = "__chatbotLiveStatusPage";

function signal(name) {
    window[MARK] = window[MARK] || name;
    console.log(`chatbot-live:${name}`);
}

function samePage() {
    if (!window[MARK]) {
        throw new Error("the page was reloaded: the view did not update by itself");
    }
}

const row = (name) => `.o_list_view .o_data_row:contains('${name}')`;

registry.category("web_tour.tours").add("chatbot_platform_live_list", {
    steps: () => [
        {
            content: "the list shows the document processing, with its progress",
            trigger: `${row("Live handbook")} td[name=progress_display]:contains('3 / 12 chunks embedded')`,
            timeout: SLOW,
        },
        {
            trigger: `${row("Live handbook")} td[name=state]:contains('Processing')`,
            timeout: SLOW,
            run: () => signal("list-open"),
        },
        {
            content: "the engine's progress reaches the open list",
            trigger: `${row("Live handbook")} td[name=progress_display]:contains('9 / 12 chunks embedded')`,
            timeout: SLOW,
            run() {
                samePage();
                signal("list-progressed");
            },
        },
        {
            content: "the document becomes ready in the open list, progress cleared",
            trigger: `${row("Live handbook")} td[name=state]:contains('Ready')`,
            timeout: SLOW,
        },
        {
            trigger: `${row("Live handbook")} td[name=chunk_count]:contains('12')`,
            timeout: SLOW,
        },
        {
            content: "the progress is cleared",
            trigger: `${row("Live handbook")} td[name=progress_display]`,
            timeout: SLOW,
            run() {
                samePage();
                if (this.anchor.textContent.trim()) {
                    throw new Error(`progress still shown: ${this.anchor.textContent}`);
                }
                signal("list-done");
            },
        },
    ],
});

registry.category("web_tour.tours").add("chatbot_platform_live_form", {
    steps: () => [
        {
            content: "the form shows the source processing, with its progress",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains('Processing')",
            timeout: SLOW,
        },
        {
            trigger: ".o_form_view div[role=status]:contains('5 / 20 chunks embedded')",
            timeout: SLOW,
            run: () => signal("form-open"),
        },
        {
            content: "the engine's progress reaches the open form",
            trigger: ".o_form_view div[role=status]:contains('15 / 20 chunks embedded')",
            timeout: SLOW,
            run() {
                samePage();
                signal("form-progressed");
            },
        },
        {
            content: "the source becomes ready in the open form",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains('Ready')",
            timeout: SLOW,
        },
        {
            trigger: ".o_form_view .o_field_widget[name=chunk_count]:contains('20')",
            timeout: SLOW,
        },
        {
            content: "the progress banner is gone",
            trigger: ".o_form_view .o_form_sheet",
            timeout: SLOW,
            run() {
                samePage();
                if (document.querySelector(".o_form_view div[role=status]")) {
                    throw new Error("the progress banner is still shown");
                }
                signal("form-done");
            },
        },
    ],
});

registry.category("web_tour.tours").add("chatbot_platform_live_other_company", {
    steps: () => [
        {
            content: "company B's list shows its own document processing",
            trigger: `${row("Company B manual")} td[name=state]:contains('Processing')`,
            timeout: SLOW,
            run() {
                // every status notification this tab receives, to be checked by the Python test
                window.chatbotLiveReceived = [];
                const bus = odoo.__WOWL_DEBUG__.root.env.services.bus_service;
                bus.subscribe("chatbot_platform/status", (payload) =>
                    window.chatbotLiveReceived.push(payload)
                );
                signal("other-open");
            },
        },
        {
            content: "company B's own status (sent after company A's) reaches its open list",
            trigger: `${row("Company B manual")} td[name=state]:contains('Ready')`,
            timeout: SLOW,
            run() {
                samePage();
                const received = window.chatbotLiveReceived.map((p) => [p.model, p.id, p.state]);
                console.log(`chatbot-live:received ${JSON.stringify(received)}`);
            },
        },
    ],
});
