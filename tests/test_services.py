"""Metric servers started for the length of a job: up before the block, stopped after, clear errors otherwise."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.services import ServiceError, group_alive, listening, running_services, stop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("shape", ["{server}", "{server} & wait"])  # the shell execs it, or forks and waits
def test_a_serve_command_runs_exactly_for_the_block(tmp_path, shape):
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
    metrics = {"judge": {"url": url, "serve": shape.format(server=server)},
               "plain": {"checkpoint": "x"}}
    assert not listening(url)
    with running_services(metrics, ["judge", "plain", "judge"], tmp_path):
        assert listening(url)
    assert not listening(url)
    assert (tmp_path / "judge_server.log").is_file()


def test_a_process_whose_main_thread_exited_runs_while_another_thread_does():
    """A zombie main thread is not a stopped server: the other threads (a threading server's) still hold its socket."""
    port = free_port()
    code = ("import ctypes, socket, threading, time; server = socket.create_server(('127.0.0.1', %d)); "
            "threading.Thread(target=time.sleep, args=(60,)).start(); ctypes.CDLL(None).pthread_exit(None)" % port)
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":  # main thread exited
            time.sleep(0.05)
        assert listening(f"http://127.0.0.1:{port}") and group_alive(process.pid)
        stop(process)
        assert not group_alive(process.pid) and not listening(f"http://127.0.0.1:{port}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_socket_connected_to_itself_is_no_server(monkeypatch):
    """With nothing listening on an ephemeral port, a connect may pick that very port as its source and succeed."""
    own = socket.socket()
    own.bind(("127.0.0.1", 0))
    own.connect(own.getsockname())  # TCP's simultaneous open, with itself
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: own)
    assert not listening(f"http://127.0.0.1:{own.getsockname()[1]}")


def test_a_server_that_exits_early_names_its_log(tmp_path):
    metrics = {"geneval": {"url": f"http://127.0.0.1:{free_port()}", "serve": f"{sys.executable} -c 'import sys; sys.exit(3)'"}}
    with pytest.raises(ServiceError, match="exited with code 3") as err:
        with running_services(metrics, ["geneval"], tmp_path):
            pass
    assert "geneval_server.log" in str(err.value)


def test_a_slow_server_times_out_and_is_stopped(tmp_path):
    metrics = {"judge": {"url": f"http://127.0.0.1:{free_port()}", "serve": "sleep 60", "serve_timeout": 1}}
    with pytest.raises(ServiceError, match="within 1 s"):
        with running_services(metrics, ["judge"], tmp_path):
            pass


def test_port_placeholders_give_each_job_its_own_server(tmp_path):
    """Two jobs on one node with the same config: each starts its own server on a port of its own."""
    server = f"{sys.executable} -m http.server {{port}} --bind 127.0.0.1"
    metrics = {"judge": {"url": "http://127.0.0.1:{port}/v1", "serve": server}}
    with running_services(metrics, ["judge"], tmp_path / "a") as first:
        with running_services(metrics, ["judge"], tmp_path / "b") as second:
            urls = first["judge"]["url"], second["judge"]["url"]
            assert urls[0] != urls[1] and all(listening(u) for u in urls)
            assert first["judge"]["serve"].endswith(f"{urls[0].split(':')[2].split('/')[0]} --bind 127.0.0.1")
        assert listening(urls[0]) and not listening(urls[1])  # the second job's end leaves the first one's server
    assert metrics["judge"]["url"] == "http://127.0.0.1:{port}/v1"  # the config itself is not changed


def test_a_port_placeholder_without_a_server_to_start_is_an_error(tmp_path):
    with pytest.raises(ServiceError, match="no serve command"):
        with running_services({"judge": {"url": "http://127.0.0.1:{port}/v1"}}, ["judge"], tmp_path):
            pass
