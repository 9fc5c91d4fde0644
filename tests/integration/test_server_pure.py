"""The server runs on the pure-Python twins too (MPGEARMAN_PURE=1): the
same round trips, status answers and spooled payloads."""
import psutil

from gearproto import PacketType as T


def test_pure_python_server(server_factory, fname, monkeypatch):
    monkeypatch.setenv("MPGEARMAN_PURE", "1")
    srv = server_factory("mpgearman", "--job-handle-prefix", "P")
    for pid in srv.pids():
        mapped = " ".join(m.path for m in psutil.Process(pid).memory_maps())
        assert "native/_ring" not in mapped and "native/_board" not in mapped
    f = fname.encode()
    big = bytes(range(256)) * 1024      # 256 KiB: above the spool threshold
    with srv.connect() as w, srv.connect() as c:
        w.send_packet(T.CAN_DO, f)
        handle = c.submit(T.SUBMIT_JOB, f, b"", big)
        c.send_packet(T.GET_STATUS, handle)
        c.expect(T.STATUS_RES, handle + b"\x001\x000\x000\x000")
        w.send_packet(T.GRAB_JOB)
        w.expect(T.JOB_ASSIGN, handle + b"\0" + f + b"\0" + big)
        w.send_packet(T.WORK_COMPLETE, handle, big[::-1])
        c.expect(T.WORK_COMPLETE, handle + b"\0" + big[::-1])
        assert c.call(T.ECHO_REQ, big).payload == big
