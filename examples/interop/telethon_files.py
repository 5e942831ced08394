"""Telethon's TelegramClient uploads a file with `upload_file` and downloads it back with `download_file`, at its
default settings, against our test DC (through whatever relay the caller puts in front of it). Run by the
throughput measurement of tests/client_files.rs (`throughput_with_injected_rtt_beside_telethon_and_kurigram`).

test_dc serves an upload as `inputDocumentFileLocation { id: <the upload's file id> }` (test-dc/src/files.rs).
Telethon is fast only with `cryptg` installed (`pip install cryptg`); without it its AES is pure Python.

argv: port, RSA modulus hex, exponent, size in bytes.
Prints `UP <seconds>` and `DOWN <seconds>`; exits non-zero if the bytes differ.
"""
import asyncio
import logging
import os
import sys
import time

import rsa as pyrsa
from telethon import TelegramClient, types
from telethon.crypto import rsa
from telethon.sessions import StringSession


async def main():
    port, n_hex, e, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rsa.add_key(pyrsa.PublicKey(int(n_hex, 16), e).save_pkcs1(), old=False)
    TelegramClient._config = None
    c = TelegramClient(StringSession(), api_id=1, api_hash='0123456789abcdef0123456789abcdef',
                       connection_retries=1, retry_delay=0, request_retries=3, timeout=60)
    c.session.set_dc(1, '127.0.0.1', port)
    await asyncio.wait_for(c.connect(), 60)
    data = os.urandom(size)

    t = time.monotonic()
    f = await c.upload_file(data)
    print('UP', time.monotonic() - t, flush=True)

    loc = types.InputDocumentFileLocation(id=f.id, access_hash=0, file_reference=b'', thumb_size='')
    t = time.monotonic()
    got = await c.download_file(loc, file=bytes, file_size=size)
    print('DOWN', time.monotonic() - t, flush=True)
    assert got == data, (len(got), len(data))
    await c.disconnect()


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
