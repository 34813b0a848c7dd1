"""An SMTP sink for the end-to-end tests: aiosmtpd receives the issuer's mail and a small
HTTP server hands it to the test as JSON (GET /messages).

Usage: smtp_sink.py SMTP_PORT [plain|starttls|implicit CERT_PEM KEY_PEM]

The HTTP server takes a free port; `ready HTTP_PORT` on stdout says both listen. Every
message is kept in memory, parsed with the standard library's email package: envelope sender
and recipients, the From, To and Subject headers, the text and HTML parts.
"""

import email
import json
import ssl
import sys
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

MESSAGES = []
LOCK = threading.Lock()


def part(message, subtype):
    body = message.get_body(preferencelist=(subtype,))
    return body.get_content() if body is not None else None


class Sink:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with LOCK:
            MESSAGES.append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "from": str(message["from"]),
                    "to": str(message["to"]),
                    "subject": str(message["subject"]),
                    "text": part(message, "plain"),
                    "html": part(message, "html"),
                }
            )
        return "250 OK"


class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        with LOCK:
            data = json.dumps(MESSAGES).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class ImplicitTlsController(Controller):
    """aiosmtpd checks that its server is up by connecting in clear; with TLS from the first
    byte that check must speak TLS, trusting the test's own certificate."""

    def _trigger_server(self):
        import socket

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection((self.hostname, self.port), 1.0) as raw:
            with context.wrap_socket(raw) as tls:
                tls.recv(1024)


def main():
    smtp_port = int(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else "plain"
    if mode == "plain":
        controller = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    else:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        if mode == "starttls":
            controller = Controller(
                Sink(),
                hostname="127.0.0.1",
                port=smtp_port,
                tls_context=context,
                require_starttls=True,
            )
        elif mode == "implicit":
            controller = ImplicitTlsController(
                Sink(), hostname="127.0.0.1", port=smtp_port, ssl_context=context
            )
        else:
            sys.exit(f"unknown mode {mode}")
    controller.start()
    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    print(f"ready {api.server_address[1]}", flush=True)
    api.serve_forever()


if __name__ == "__main__":
    main()
