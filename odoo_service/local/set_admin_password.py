# Run by start.sh --local on Odoo's first start, through `odoo shell` (which provides `env`):
# gives the user `admin` the password ODOO_ADMIN_USER_PASSWORD from .env instead of `admin`.
import os

password = os.environ["ODOO_ADMIN_USER_PASSWORD"]
admin = env.ref("base.user_admin")  # noqa: F821 - `env` is odoo shell's
admin.password = password
env.cr.commit()  # noqa: F821
print("admin password set")
