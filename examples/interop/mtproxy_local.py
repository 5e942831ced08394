"""Runs mtprotoproxy (PyPI `mtprotoproxy` 1.0.6: its installed `mtprotoproxy.py` script, unmodified) as an MTProxy on
127.0.0.1 in front of our test DC, for the manual check in examples/interop/MTPROXY.md.

usage: python3 examples/interop/mtproxy_local.py LISTEN_PORT DC_PORT SECRET_HEX [--secure-only]

What is changed around the script, and why (its code paths for clients are untouched):
- every Telegram DC address becomes 127.0.0.1:DC_PORT (the script hard-codes Telegram's five DCs on port 443);
- its start-up network look-ups (own public IP, the mask host's certificate length) are not run, and bad clients are
  not forwarded to a mask host (MASK = False): nothing leaves the machine;
- its `main()` passes `loop=` to asyncio.start_server, which Python >= 3.10 rejects, so the listener is started here
  with the script's own connection handler (`handle_client_wrapper`);
- it names `asyncio.streams.IncompleteReadError`, gone from that module since Python 3.11, in the except clause that
  ends a relayed connection; the name is put back (otherwise each closed connection prints an AttributeError).
Direct mode (no middle proxy, no ad tag) with FAST_MODE, the script's defaults: the proxy re-encrypts the client's
stream toward the DC and hands the DC's stream to the client unchanged, so both the client's and the DC's
obfuscation must match the spec byte for byte.
"""
import asyncio
import importlib.util
import os
import sys
import sysconfig
import tempfile


def load(secret_hex, listen_port, secure_only):
    path = os.path.join(sysconfig.get_path('scripts'), 'mtprotoproxy.py')
    cfg = tempfile.NamedTemporaryFile('w', suffix='.py', delete=False)
    cfg.write(f"PORT = {listen_port}\nUSERS = {{'interop': '{secret_hex}'}}\nSECURE_ONLY = {secure_only}\n"
              "MASK = False\nPREFER_IPV6 = False\nLISTEN_ADDR_IPV4 = '127.0.0.1'\nLISTEN_ADDR_IPV6 = ''\n"
              "STATS_PRINT_PERIOD = 5\n")
    cfg.close()
    # The script reads sys.argv at import time; a single argument is its config file.
    sys.argv = [path, cfg.name]
    spec = importlib.util.spec_from_file_location('mtprotoproxy', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.init_config()
    os.unlink(cfg.name)
    return mod


async def serve(mod, listen_port):
    asyncio.get_running_loop().set_exception_handler(mod.loop_exception_handler)
    mod.init_stats()
    server = await asyncio.start_server(mod.handle_client_wrapper, '127.0.0.1', listen_port,
                                        limit=mod.get_to_tg_bufsize())
    print(f'mtprotoproxy {sys.argv[0]} on 127.0.0.1:{listen_port} -> DC 127.0.0.1:{mod.TG_DATACENTER_PORT}, '
          f'secure_only={mod.config.SECURE_ONLY}', flush=True)
    stats = asyncio.ensure_future(mod.stats_printer())
    try:
        await server.serve_forever()
    finally:
        stats.cancel()


def main():
    if not hasattr(asyncio.streams, 'IncompleteReadError'):
        asyncio.streams.IncompleteReadError = asyncio.IncompleteReadError
    listen_port, dc_port, secret_hex = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    secure_only = '--secure-only' in sys.argv[4:]
    mod = load(secret_hex, listen_port, secure_only)
    mod.TG_DATACENTERS_V4 = ['127.0.0.1'] * len(mod.TG_DATACENTERS_V4)
    mod.TG_DATACENTER_PORT = dc_port
    mod.my_ip_info = {'ipv4': None, 'ipv6': None}
    mod.print_tg_info()
    asyncio.run(serve(mod, listen_port))


main()
