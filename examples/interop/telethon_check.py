"""Telethon's own MTProto sender (telethon.network.MTProtoSender: its handshake, its session layer, its framings)
against our test DC. Run by tests/interop_telethon.rs.

argv: port, transport (full|abridged|intermediate|obfuscated|mtproxy|http), RSA modulus hex, exponent[, secret hex].
Prints one `OK <check>` line per passed check and `KEY <hex>` with the auth key; exits non-zero on failure.
"""
import asyncio
import logging
import os
import sys

import rsa as pyrsa
from telethon import errors
from telethon.crypto import rsa
from telethon.network import MTProtoSender
from telethon.network.connection.http import HttpPacketCodec
from telethon.network.connection import (ConnectionHttp, ConnectionTcpAbridged, ConnectionTcpFull,
                                         ConnectionTcpIntermediate, ConnectionTcpMTProxyRandomizedIntermediate,
                                         ConnectionTcpObfuscated)
from telethon.tl import functions, types
from telethon.tl.alltlobjects import LAYER


class FixedHttpPacketCodec(HttpPacketCodec):
    """Telethon 1.45's HttpPacketCodec.read_packet tests `line[-1] != b'\\n'`, an int against bytes, which is
    always true on Python 3, so ConnectionHttp fails on the first response line against any server. This is the
    same method with only that comparison fixed (`line[-1:]`); requests are still Telethon's own encode_packet."""

    async def read_packet(self, reader):
        while True:
            line = await reader.readline()
            if not line or line[-1:] != b'\n':
                raise asyncio.IncompleteReadError(line, None)
            if line.lower().startswith(b'content-length: '):
                await reader.readexactly(2)
                length = int(line[16:-2])
                return await reader.readexactly(length)


class FixedConnectionHttp(ConnectionHttp):
    packet_codec = FixedHttpPacketCodec


class Loggers(dict):
    def __missing__(self, key):
        return logging.getLogger(key)


def init(query):
    return functions.InvokeWithLayerRequest(LAYER, functions.InitConnectionRequest(
        api_id=1, device_model='interop', system_version='Linux', app_version='1.0', system_lang_code='en',
        lang_pack='', lang_code='en', query=query))


async def session(cls, port, auth_key, first, proxy):
    sender = MTProtoSender(auth_key, loggers=Loggers(), retries=3)
    extra = {'proxy': proxy} if proxy else {}
    await asyncio.wait_for(sender.connect(cls('127.0.0.1', port, 2, loggers=Loggers(), **extra)), 60)
    try:
        # The first call, wrapped as Telethon's client wraps it.
        cfg = await asyncio.wait_for(sender.send(init(functions.messages.GetDhConfigRequest(0, 16))), 30)
        assert isinstance(cfg, types.messages.DhConfig), cfg
        assert cfg.g == 3 and len(cfg.p) == 256 and len(cfg.random) == 16, cfg
        print('OK', first + 'init_connection_get_dh_config')

        try:
            await asyncio.wait_for(sender.send(functions.help.GetPremiumPromoRequest()), 30)
            raise SystemExit('help.getPremiumPromo did not fail')
        except errors.RPCError as e:
            assert e.code == 400 and isinstance(e, errors.InputMethodInvalidError), repr(e)
        print('OK', first + 'unknown_method_rpc_error')

        if first:
            return sender.auth_key
        # gzip_packed: Telethon compresses any request whose gzip is smaller.
        ok = await asyncio.wait_for(sender.send(functions.upload.SaveFilePartRequest(1, 0, bytes(256 * 1024))), 30)
        assert ok is True, ok
        print('OK gzip_packed_save_file_part')

        # Several requests at once: Telethon packs them into msg_containers (split at its size limit).
        # Random bytes do not compress, so this is ~1 MiB of request data on the wire.
        reqs = [functions.upload.SaveFilePartRequest(2, i, os.urandom(128 * 1024)) for i in range(8)]
        reqs.append(functions.messages.GetDhConfigRequest(1, 8))
        futs = sender.send(reqs)
        res = await asyncio.wait_for(asyncio.gather(*futs), 60)
        assert res[:8] == [True] * 8, res
        assert isinstance(res[8], types.messages.DhConfigNotModified) and len(res[8].random) == 8, res[8]
        print('OK container_1mib')

        # 100 pings at once: Telethon packs them into one container (its limit is 100 messages), and never resends
        # on its own. Each gets its pong, however few messages the DC holds per connection (issue 11 defect 7).
        futs = sender.send([functions.PingRequest(ping_id=1000 + i) for i in range(100)])
        pongs = await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert [p.ping_id for p in pongs] == [1000 + i for i in range(100)], pongs
        print('OK container_100_pings')

        # 200 queries at once, more than the DC holds unanswered and unacknowledged: each is answered once, the
        # excess with FLOOD_WAIT_1 (Telethon's client sleeps and repeats those; its bare sender leaves it to us).
        pending, flooded, rounds = list(range(200)), 0, 0
        for rounds in range(1, 11):
            futs = sender.send([functions.messages.GetDhConfigRequest(0, 8) for _ in pending])
            res = await asyncio.wait_for(asyncio.gather(*futs, return_exceptions=True), 30)
            again = []
            for i, r in zip(pending, res):
                if isinstance(r, errors.FloodWaitError):
                    assert r.seconds == 1, r
                    again.append(i)
                else:
                    assert isinstance(r, types.messages.DhConfig) and len(r.random) == 8, r
            pending = again
            flooded += len(again)
            if not pending:
                break
            await asyncio.sleep(1)
        assert not pending, pending
        print('INFO queries_200_at_once: %d answered FLOOD_WAIT_1 and repeated, %d rounds' % (flooded, rounds))
        print('OK queries_200_at_once')

        # One large message close to Telethon's single-message maximum.
        ok = await asyncio.wait_for(sender.send(functions.upload.SaveFilePartRequest(3, 0, os.urandom(512 * 1024))), 30)
        assert ok is True, ok
        print('OK large_512kib_part')
        return sender.auth_key
    finally:
        await sender.disconnect()


async def main():
    port, transport, n_hex, e = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    # mtproxy: argv[5] is the DC's MTProxy secret (hex); Telethon connects to it as to a proxy ('dd': padded).
    proxy = ('127.0.0.1', port, 'dd' + sys.argv[5]) if transport == 'mtproxy' else None
    rsa.add_key(pyrsa.PublicKey(int(n_hex, 16), e).save_pkcs1(), old=False)
    cls = {'full': ConnectionTcpFull, 'abridged': ConnectionTcpAbridged,
           'intermediate': ConnectionTcpIntermediate, 'obfuscated': ConnectionTcpObfuscated,
           'mtproxy': ConnectionTcpMTProxyRandomizedIntermediate,
           # POST /api on the DC's TCP port, one packet per body (the DC detects HTTP by its first bytes).
           'http': FixedConnectionHttp}[transport]
    key = await session(cls, port, None, '', proxy)
    print('KEY', key.key.hex())
    # Reconnect: a new TCP connection and a new session under the same key.
    again = await session(cls, port, key, 'reconnect_', proxy)
    assert again.key == key.key
    print('OK reconnect_same_key')


asyncio.run(main())
