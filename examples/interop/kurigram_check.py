"""kurigram's own lower layers (pyrogram.session.Auth, pyrogram.session.Session, pyrogram.connection.Connection and
its TCP transport classes) against our test DC. Run by tests/interop_kurigram.rs.

kurigram's Client needs an api_id/api_hash and a phone to log in; none of that is involved here. A real Client object
(in memory, dummy api_id) only carries the transport choice, the proxy and the clock that Auth and Session read, and
the DC's RSA key is injected into kurigram's fingerprint table (pyrogram.crypto.rsa.server_public_keys).

argv: port, transport, RSA modulus hex, exponent[, MTProxy secret hex].
transport: full | abridged | intermediate | padded | abridged_o | intermediate_o | mtproxy | mtproxy_dd | mtproxy_ee
Prints one `OK <check>` line per passed check, `KEY <hex>` with the auth key and `AUTH_RETRIES <n>` (how often
kurigram's Auth.create had to start over); exits non-zero on failure.
"""
import asyncio
import hashlib
import logging
import os
import sys

import pyrogram
from pyrogram import raw
from pyrogram.connection.proxy import MTProxy
from pyrogram.connection.transport import (TCPAbridged, TCPAbridgedO, TCPFull, TCPIntermediate, TCPIntermediateO,
                                           TCPIntermediatePadded)
from pyrogram.crypto import rsa
from pyrogram.errors import InputMethodInvalid
from pyrogram.raw.all import layer
from pyrogram.raw.core import Bytes
from pyrogram.session import Auth, Session

DC_ID = 2


class Retries(logging.Handler):
    """Counts Auth.create's "Retrying due to ..." lines: a handshake that had to start over."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.count = 0
        self.reasons = []

    def emit(self, record):
        if record.getMessage().startswith('Retrying due to'):
            self.count += 1
            self.reasons.append(record.getMessage())


def fingerprint(n: int, e: int) -> int:
    # The key's fingerprint as kurigram keys its table: the low 64 bits of SHA1(TL bytes n || TL bytes e), signed.
    n_b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    e_b = e.to_bytes((e.bit_length() + 7) // 8, 'big')
    return int.from_bytes(hashlib.sha1(Bytes(n_b) + Bytes(e_b)).digest()[-8:], 'little', signed=True)


def wrapped(query):
    # The shape of kurigram's own first call (Session.start): invokeWithLayer(initConnection(query)).
    return raw.functions.InvokeWithLayer(layer=layer, query=raw.functions.InitConnection(
        api_id=1, app_version='1.0', device_model='interop', system_version='Linux', system_lang_code='en',
        lang_pack='', lang_code='en', query=query))


async def calls(session: Session, prefix: str, large: bool):
    cfg = await session.invoke(wrapped(raw.functions.messages.GetDhConfig(version=0, random_length=16)), retries=1)
    assert isinstance(cfg, raw.types.messages.DhConfig), cfg
    assert cfg.g == 3 and len(cfg.p) == 256 and len(cfg.random) == 16, cfg
    print('OK', prefix + 'init_connection_get_dh_config', flush=True)

    # A method the test DC does not implement (help.getPremiumPromo), wrapped as Session.start wraps its first call:
    # an rpc_error round trip through kurigram's error mapping.
    try:
        await session.invoke(wrapped(raw.functions.help.GetPremiumPromo()), retries=1)
        raise SystemExit('help.getPremiumPromo did not fail')
    except InputMethodInvalid as e:
        assert e.CODE == 400 and e.ID == 'INPUT_METHOD_INVALID', repr(e)
    print('OK', prefix + 'unknown_method_rpc_error', flush=True)

    pong = await session.send(raw.functions.Ping(ping_id=0x1234_5678_9abc))
    assert isinstance(pong, raw.types.Pong) and pong.ping_id == 0x1234_5678_9abc, pong
    print('OK', prefix + 'ping_pong', flush=True)

    if large:
        # kurigram's save_file uses 512 KiB parts: one message of that size, and the DC's boolTrue back.
        ok = await session.invoke(
            raw.functions.upload.SaveFilePart(file_id=7, file_part=0, bytes=os.urandom(512 * 1024)), retries=1)
        assert ok is True, ok
        # Several requests in flight at once on one connection.
        res = await asyncio.gather(*[session.invoke(raw.functions.messages.GetDhConfig(version=0, random_length=i),
                                                    retries=1) for i in range(1, 9)])
        assert [len(r.random) for r in res] == list(range(1, 9)), res
        print('OK', prefix + 'large_and_concurrent', flush=True)


async def start(session: Session):
    await asyncio.wait_for(session.start(), 30)
    # Session.start swallows OSError/RPCError and schedules a restart instead of raising: check it really started.
    await asyncio.wait_for(session.is_started.wait(), 30)


EE_DOMAIN = b'www.example.org'


async def main():
    port, transport, n_hex, e = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    secret = bytes.fromhex(sys.argv[5]) if len(sys.argv) > 5 else b''
    retries = Retries()
    logging.getLogger('pyrogram.session.auth').addHandler(retries)
    logging.getLogger('pyrogram.session.auth').setLevel(logging.INFO)

    n = int(n_hex, 16)
    fp = fingerprint(n, e)
    rsa.server_public_keys[fp] = rsa.PublicKey(n, e)

    cls = {'full': TCPFull, 'abridged': TCPAbridged, 'intermediate': TCPIntermediate, 'padded': TCPIntermediatePadded,
           'abridged_o': TCPAbridgedO, 'intermediate_o': TCPIntermediateO,
           'mtproxy': TCPAbridged, 'mtproxy_dd': TCPIntermediatePadded, 'mtproxy_ee': TCPIntermediatePadded}[transport]
    proxy = None
    if transport == 'mtproxy':
        proxy = MTProxy(hostname='127.0.0.1', port=port, secret=secret)
    elif transport == 'mtproxy_dd':
        proxy = MTProxy(hostname='127.0.0.1', port=port, secret=b'\xdd' + secret)
    elif transport == 'mtproxy_ee':
        # Fake-TLS: kurigram's ClientHello for the domain, then its obfuscated stream inside TLS records.
        proxy = MTProxy(hostname='127.0.0.1', port=port, secret=secret,
                        sni_hostname=EE_DOMAIN.decode())

    client = pyrogram.Client('interop', api_id=1, api_hash='0' * 32, in_memory=True, protocol_factory=cls,
                             proxy=proxy, no_updates=True)

    # 1. The handshake, by kurigram's Auth (legacy RSA encoding, p_q_inner_data without dc; it checks that the DC
    #    uses Telegram's dh_prime).
    auth_key = await asyncio.wait_for(Auth(client, DC_ID, '127.0.0.1', port, False).create(), 60)
    assert len(auth_key) == 256
    print('KEY', auth_key.hex(), flush=True)
    print('AUTH_RETRIES', retries.count, *retries.reasons, flush=True)
    print('OK handshake', flush=True)

    # 2. An encrypted session (is_cdn: Session.start then sends only its ping; the wrapped calls are made below).
    session = Session(client, DC_ID, '127.0.0.1', port, auth_key, False, is_cdn=True)
    await start(session)
    try:
        await calls(session, '', True)
        # kurigram's own reconnect: Session.restart drops the TCP connection and opens a new one, same session id.
        first_session = session.session_id
        await asyncio.wait_for(session.restart(), 30)
        await asyncio.wait_for(session.is_started.wait(), 30)
        assert session.session_id == first_session
        await calls(session, 'restart_', False)
    finally:
        await session.stop()

    # 3. A new Session under the same key: new TCP connection, new session id, no new handshake.
    again = Session(client, DC_ID, '127.0.0.1', port, auth_key, False, is_cdn=True)
    assert again.session_id != session.session_id
    await start(again)
    try:
        await calls(again, 'reconnect_', False)
    finally:
        await again.stop()
    print('OK reconnect_same_key', flush=True)


asyncio.run(main())
