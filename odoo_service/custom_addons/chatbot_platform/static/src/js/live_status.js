/** @odoo-module **/
// Live status: an open form or list of chatbots, documents or links reloads when the server
// pushes a status change of one of its records (models/chatbot_sync_mixin.py, bus notification
// "chatbot_platform/status"); a form with unsaved edits is left alone.
import { onWillUnmount } from "@odoo/owl";
import { patch } from "@web/core/utils/patch";
import { useService } from "@web/core/utils/hooks";
import { FormController } from "@web/views/form/form_controller";
import { ListController } from "@web/views/list/list_controller";

const NOTIFICATION = "chatbot_platform/status";
const MODELS = new Set(["chatbot.chatbot", "chatbot.document", "chatbot.link"]);

function useLiveStatus(controller, shouldReload) {
    if (!MODELS.has(controller.props.resModel)) {
        return;
    }
    const bus = useService("bus_service");
    const onStatus = async (payload) => {
        if (payload && payload.model === controller.props.resModel && (await shouldReload(payload))) {
            await controller.model.load();
        }
    };
    bus.subscribe(NOTIFICATION, onStatus);
    onWillUnmount(() => bus.unsubscribe(NOTIFICATION, onStatus));
}

patch(FormController.prototype, {
    setup() {
        super.setup(...arguments);
        useLiveStatus(this, async (payload) => {
            const root = this.model.root;
            return Boolean(root && root.resId === payload.id && !(await root.isDirty()));
        });
    },
});

patch(ListController.prototype, {
    setup() {
        super.setup(...arguments);
        useLiveStatus(this, (payload) => this.model.root.records.some((r) => r.resId === payload.id));
    },
});
