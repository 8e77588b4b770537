"""The demo's one-click services: a legacy service's own table row as ``configureServiceType``
filled it, what ``migrateServicesToNewTemplate`` later copied from it (settings, secrets verbatim,
volumes), and the services that only ever had a template. The tables' specs: ``demo_services``."""

from __future__ import annotations

import functools
from typing import Any

from coolify_migrate.apps.coolify_v3.demo_keys import KeyPool
from coolify_migrate.apps.coolify_v3.demo_services import LEGACY, TEMPLATED
from coolify_migrate.apps.coolify_v3.demo_writer import AsIs, Builder, Cipher, Field


@functools.cache
def _variable(name: str) -> str:
    """A template setting's variable (MINIO_SERVER_URL became the console's FQDN variable)."""
    key = "coolify_fqdn_minio_console" if name == "MINIO_SERVER_URL" else name
    return f"$$config_{key.lower()}"


# The columns of the tables with the most rows (half of them): their rows are put whole
SETTING = ("id", "serviceId", "name", "value", "variableName", "createdAt", "updatedAt")
SECRET = ("id", "name", "value", "createdAt", "updatedAt", "serviceId")
STORAGE = (
    "id",
    "serviceId",
    "path",
    "volumeName",
    "predefined",
    "containerId",
    "createdAt",
    "updatedAt",
)


class ServiceRows:
    """A unit's services, put through the unit's builder; keys come from the pool."""

    def __init__(self, b: Builder, pool: KeyPool) -> None:
        self.b = b
        self.pool = pool
        b.declare("ServiceSetting", SETTING)
        b.declare("ServicePersistentStorage", STORAGE)
        b.declare("ServiceSecret", SECRET)

    def _generate(self, spec: Any, sid: str) -> Any:
        b = self.b
        if not isinstance(spec, str):
            return spec
        if spec.startswith("="):
            return spec[1:]
        if "{" in spec:
            return spec.format(sid=sid, api=f"https://api-{sid[-6:]}.example.com")
        if spec == "cuid":
            return b.cuid()
        if spec == "email":
            return f"{b.cuid()}@example.com"
        if spec == "hex64":
            return b.hex(64)  # generatePassword({length: 32, isHex: true})
        if spec == "sym64":
            return b.password(64, symbols=True)
        return b.password(int(spec[2:] or 24))  # pw, pw32, pw64

    def _variant(self, table: str, variant: int) -> dict[str, Any]:
        b, pool = self.b, self.pool
        if table == "Wordpress" and variant == 0:  # FTP enabled: ssh-keygen host keys, a password
            host_key, host_key_private = pool.ftp_host_keys[b.rng.randrange(2)]
            return {
                "ftpEnabled": True,
                "ftpUser": b.cuid(),
                "ftpPassword": b.password(),
                "ftpPublicPort": 9100 + b.rng.randrange(800),
                "ftpHostKey": host_key,
                "ftpHostKeyPrivate": host_key_private,
            }
        if table == "Wordpress":  # its own MySQL, FTP never enabled
            return {
                "ownMysql": True,
                "mysqlHost": "mysql.example.com",
                "mysqlUser": "wordpress",
                "mysqlRootUser": None,
                "mysqlRootUserPassword": None,
                "ftpPassword": None,
                "ftpHostKey": None,
                "ftpHostKeyPrivate": None,
            }
        if table == "GlitchTip" and variant == 0:
            return {
                "emailSmtpHost": "smtp.example.com",
                "emailSmtpPort": 587,
                "emailSmtpUser": "glitchtip@example.com",
                "emailSmtpPassword": b.password(),
                "emailSmtpUseTls": True,
                "emailBackend": "smtp",
                "mailgunApiKey": "key-" + b.hex(32),
                "sendgridApiKey": f"SG.{b.password(22)}.{b.password(43)}",
            }
        if table == "GlitchTip":  # an SMTP password saved empty, no API keys
            return {"emailSmtpPassword": AsIs(""), "mailgunApiKey": None, "sendgridApiKey": None}
        if table == "Fider" and variant == 0:
            return {
                "emailMailgunApiKey": "key-" + b.hex(32),
                "emailMailgunDomain": "mg.example.com",
                "emailSmtpHost": "smtp.mailgun.org",
                "emailSmtpPort": 587,
                "emailSmtpUser": "postmaster@mg.example.com",
                "emailSmtpPassword": b.password(32),
                "emailSmtpEnableStartTls": True,
            }
        if table == "Fider":
            return {"emailMailgunApiKey": None, "emailSmtpPassword": None}
        return {}

    def service(self, table: str, variant: int, team: str, dest: str, migrated_at: int) -> None:
        b = self.b
        spec = LEGACY[table]
        sid = b.cuid()
        detail: dict[str, Any] = {"id": b.cuid(), "serviceId": sid}
        for col, gen in spec.fields.items():
            detail[col] = self._generate(gen, sid)
        detail.update(self._variant(table, variant))
        # unset encrypted fields are NULL, other unset fields take the schema's default
        detail = {**b.specs[table].unset, **detail}
        own_mysql = table == "Wordpress" and detail["ownMysql"]
        service: dict[str, Any] = {
            "id": sid,
            "name": f"{spec.type.lower()}-{b.name()}",
            "fqdn": f"https://{spec.type.lower()}-{sid[-6:]}.example.com",
            "type": spec.type,
            "version": spec.version,
            "destinationDockerId": dest,
        }
        b.put("Service", service)
        b.link("_ServiceToTeam", sid, team)
        stored = b.put(table, detail, updated=True)
        # What the JavaScript saw: plaintexts of the encrypted fields ('' for an empty one).
        plain = {**detail, "sid": sid}
        for col, held in stored.items():
            plain[col] = held.plain if isinstance(held, Cipher) else held and held.text
        migrated = "wordpress-only" if own_mysql else spec.migrated
        if migrated is None:
            return
        # migrateServicesToNewTemplate, run once the instance ran 3.12.x: secrets and settings
        # from the legacy fields; a ServiceSecret gets the field's stored text, verbatim.
        at = migrated_at
        settings, secrets = spec.settings, spec.secrets
        if own_mysql:
            secrets = (("WORDPRESS_DB_PASSWORD", "mysqlPassword"), *secrets[2:])
            settings = (
                ("WORDPRESS_CONFIG_EXTRA", "extraConfig"),
                ("WORDPRESS_DB_HOST", "mysqlHost"),
                ("WORDPRESS_DB_PORT", "mysqlPort"),
                ("WORDPRESS_DB_USER", "mysqlUser"),
                ("WORDPRESS_DB_NAME", "mysqlDatabase"),
            )
        for name, source in settings:
            if source.startswith("="):
                value: Any = source[1:]
            elif source.startswith("{"):
                value = source.format(sid=sid)
            elif source.startswith("@"):
                held = stored[source[1:]]  # a Cipher is written as its text once sealed
                value = held.text if isinstance(held, AsIs) else held
            elif source in b.specs[table].booleans:
                value = "true" if detail[source] else "false"  # `${false}`
            else:
                value = detail.get(source)
            if value is None or value in ("", "null"):
                continue
            at += b.between(2, 40)
            text = value if isinstance(value, Cipher) else str(value)
            b.add("ServiceSetting", (b.cuid(), sid, name, text, _variable(name), at, at))
        for name, source in secrets:
            if source.startswith("~"):
                copied: Field = b.encrypt(source[1:].format_map(plain))
            else:
                copied = stored[source]
                # a ciphertext is never '' or 'null' (and reading it here would seal its batch)
                if copied is None or (isinstance(copied, AsIs) and copied.text in ("", "null")):
                    continue
            at += b.between(2, 40)
            b.add("ServiceSecret", (b.cuid(), name, copied, at, at, sid))
        smtp = ("emailSmtpUser", "emailSmtpPassword", "emailSmtpHost", "emailSmtpPort")
        if table == "GlitchTip" and all(plain.get(k) for k in smtp):
            # `EMAIL_URL@@@${encrypt(`smtp://…`)} || ''`: the " || ''" landed in the value
            url = "smtp://{emailSmtpUser}:{emailSmtpPassword}@{emailSmtpHost}:{emailSmtpPort}"
            glued = AsIs(b.encrypt_now(url.format_map(plain)) + " || ''")
            at += b.between(2, 40)
            b.add("ServiceSecret", (b.cuid(), "EMAIL_URL", glued, at, at, sid))
        for container, volume, path in spec.volumes:
            owner = detail["id"] if table == "PlausibleAnalytics" else sid
            at += b.between(2, 40)
            container_id = f"{sid}-{container}" if container else sid
            volume_name = f"{owner}-{volume}"
            b.add(
                "ServicePersistentStorage",
                (b.cuid(), sid, path, volume_name, True, container_id, at, at),
            )
        service.update(type=migrated, templateVersion="1.0.0", updatedAt=at)

    def templated(self, u: int, team: str, dest: str) -> None:
        b = self.b
        kind, version, secrets, settings = TEMPLATED[u % len(TEMPLATED)]
        sid = b.cuid()
        b.put(
            "Service",
            {
                "id": sid,
                "name": f"{kind}-{b.name()}",
                "fqdn": f"https://{kind}-{sid[-6:]}.example.com",
                "type": kind,
                "version": version,
                "templateVersion": "1.0.0",
                "destinationDockerId": dest,
            },
        )
        b.link("_ServiceToTeam", sid, team)
        for name, gen in secrets:
            value: Field = b.password() if gen == "pw" else AsIs("")
            row_id = b.cuid()
            at = b.tick()  # (created after its id, as ``put`` does)
            b.add("ServiceSecret", (row_id, name, value, at, at, sid))
        if u % 5 == 0:  # a user-added secret an old code path stored in the clear
            row_id = b.cuid()
            clear = AsIs("Tr0ub4dor&3-" + b.password(8))
            at = b.tick()
            b.add("ServiceSecret", (row_id, "SMTP_PASSWORD", clear, at, at, sid))
        for name, value in settings:
            row_id = b.cuid()
            at = b.tick()  # (created after its id, as ``put`` does)
            b.add("ServiceSetting", (row_id, sid, name, value, _variable(name), at, at))
        row_id = b.cuid()
        at = b.tick()
        b.add("ServicePersistentStorage", (row_id, sid, "/data", f"{sid}-data", True, sid, at, at))
