"""An SMTP server on loopback that keeps what it receives, for tests/tests/email.rs.

    python sink.py PORT FOLDER

Started by the tests with the virtualenv of scripts/test.sh (aiosmtpd, pinned in
scripts/python/requirements.lock). Each message it accepts becomes FOLDER/NNNNNN.json:
the envelope (`mail_from`, `rcpt_tos`), the headers `from`, `to`, `subject`, and the plain-text
body decoded as a mail reader would show it (quoted-printable or base64 undone). A recipient
whose address begins with `refused-` is refused for good (550), as a missing mailbox is. Prints
"ready" once it listens; runs until it is killed.
"""

import json
import os
import sys
import time
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class Keep:
    def __init__(self, folder):
        self.folder = folder
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A mailbox that does not exist, for good: what a real server answers with 550.
        if address.startswith("refused-"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        part = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "content_type": message.get_content_type(),
            "body": part.get_content() if part is not None else "",
        }
        self.count += 1
        name = os.path.join(self.folder, "%06d.json" % self.count)
        with open(name + ".tmp", "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(name + ".tmp", name)
        return "250 Message accepted for delivery"


def main():
    port, folder = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Keep(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
