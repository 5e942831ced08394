"""Runs Telethon's own auth-key handshake (telethon.network.authenticator.do_authentication) against our DC role.

argv: port, transport (full|abridged|intermediate|obfuscated), modulus hex, exponent. Prints the auth key as hex.
Telethon uses the legacy RSA encoding and the legacy p_q_inner_data constructor (INTEROP.md). About 1 run in 256
fails because Telethon strips a leading zero byte of encrypted_data; like Telethon itself, retry.
"""
import asyncio
import logging
import sys

import rsa as pyrsa
from telethon.crypto import rsa
from telethon.network import MTProtoPlainSender, authenticator
from telethon.network.connection import (ConnectionTcpAbridged, ConnectionTcpFull, ConnectionTcpIntermediate,
                                         ConnectionTcpObfuscated)


class Loggers(dict):
    def __missing__(self, key):
        return logging.getLogger(key)


async def main():
    port, transport, n_hex, e = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    rsa.add_key(pyrsa.PublicKey(int(n_hex, 16), e).save_pkcs1(), old=False)
    cls = {'full': ConnectionTcpFull, 'abridged': ConnectionTcpAbridged,
           'intermediate': ConnectionTcpIntermediate, 'obfuscated': ConnectionTcpObfuscated}[transport]
    last = None
    for _ in range(5):
        conn = cls('127.0.0.1', port, 2, loggers=Loggers())
        await conn.connect(timeout=10)
        try:
            key, offset = await asyncio.wait_for(authenticator.do_authentication(
                MTProtoPlainSender(conn, loggers=Loggers())), 20)
            print(key.key.hex())
            print(offset)
            return
        except Exception as exc:  # noqa: BLE001 - report and retry, as Telethon does
            last = exc
            print('retry after:', repr(exc), file=sys.stderr)
        finally:
            await conn.disconnect()
    raise SystemExit('no handshake: %r' % (last,))


asyncio.run(main())
