"""The SMTP sender over TLS, against real aiosmtpd servers with a test certificate authority
(trustme): SMTPS, and STARTTLS with a login (user and password from the URL)."""

import ssl
from collections.abc import Iterator

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from services.notifier.senders import SmtpSender
from tests.mail_sink import MailSink

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"


@pytest.fixture
def certificate_authority(tmp_path, monkeypatch) -> Iterator[ssl.SSLContext]:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(bundle)
    # The sender verifies certificates against the system's store: point it at the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    yield server_context


def _accept_ada(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"ada" and auth_data.password == b"s3cret pass"
    return AuthResult(success=ok)


def test_smtps(certificate_authority):
    sink = MailSink()
    sink.controller = Controller(
        sink, hostname="127.0.0.1", port=sink.port, ssl_context=certificate_authority
    )
    sink.controller.start()
    try:
        with SmtpSender(f"smtps://127.0.0.1:{sink.port}") as sender:
            sender.send("a@example.org", "b@example.org", MESSAGE)
    finally:
        sink.stop()
    assert [item.recipients for item in sink.received] == [["b@example.org"]]


# aiosmtpd 1.4 warns about its own login bookkeeping when a login succeeds.
@pytest.mark.filterwarnings("ignore:Session.login_data is deprecated:DeprecationWarning")
def test_starttls_with_a_login(certificate_authority):
    sink = MailSink()
    port = sink.port
    sink.controller = Controller(
        sink, hostname="127.0.0.1", port=port, tls_context=certificate_authority,
        require_starttls=True, authenticator=_accept_ada, auth_required=True,
    )  # fmt: skip
    sink.controller.start()
    try:
        with SmtpSender(f"smtp+starttls://ada:s3cret%20pass@127.0.0.1:{port}") as sender:
            sender.send("a@example.org", "b@example.org", MESSAGE)
    finally:
        sink.stop()
    assert len(sink.received) == 1
