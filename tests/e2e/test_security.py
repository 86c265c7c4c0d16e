"""The page is caged: no inline script or eval, no navigation away, no network, no path tricks.

A local HTTP server stands in for "the network": every request it receives is recorded, so
"blocked" is checked by what did not arrive, not only by what the page logged. These tests
provoke CSP reports and blocked requests on purpose and declare them, so they do not fail.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from backend import paths
from backend.gui.waiting import spin
from tests.e2e.harness import Driver

pytestmark = pytest.mark.e2e

CSP = "Content Security Policy"


class Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server name)
        Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"window.__net = 1;")

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def still_home(app: Driver) -> None:
    """The app page is still loaded (not reloaded) and its bridge answers."""
    assert app.js("location.href") == "fieldmark://app/index.html"
    assert app.js("window.__marker") == 1, "the page was replaced or reloaded"
    assert app.call("app.ping", {"value": "still here"}) == {"ok": {"value": "still here"}}


def test_runtime_inline_script_and_eval_do_not_run(app: Driver) -> None:
    app.expect_console(CSP)
    result = app.run("""
        const s = document.createElement('script');
        s.textContent = 'window.__inline = 1';
        document.body.append(s);
        const d = document.createElement('div');
        d.setAttribute('onclick', 'window.__handler = 1');
        document.body.append(d); d.click(); d.remove();
        const out = {};
        try { eval('window.__eval = 1'); out.eval = 'ran'; } catch (e) { out.eval = e.name; }
        try { new Function('window.__fn = 1')(); out.fn = 'ran'; } catch (e) { out.fn = e.name; }
        setTimeout('window.__timer = 1', 0);
        await new Promise((r) => setTimeout(r, 50));
        out.flags = [window.__inline, window.__handler, window.__eval, window.__fn, window.__timer].map(String);
        return out;""")
    assert result == {"eval": "EvalError", "fn": "EvalError", "flags": ["undefined"] * 5}
    assert any(CSP in m for _, m, _, _ in app.window.console), "the refusals were reported"


def test_navigation_and_new_windows_are_refused(app: Driver, server: str) -> None:
    app.js("window.__marker = 1")
    windows = len(QApplication.topLevelWidgets())
    for target in (f"{server}/page", "https://example.com/", "file:///etc/passwd",
                   "fieldmark://app/css/base.css", "fieldmark://other/index.html"):
        app.js(f"(location.href = {json.dumps(target)}, 1)")
        spin(150)
        still_home(app)
    opened = app.js(f"[window.open({json.dumps(server + '/popup')}), window.open('fieldmark://app/index.html')]"
                    ".map((w) => w === null)")
    assert opened == [True, True]
    spin(200)
    assert len(QApplication.topLevelWidgets()) == windows, "a new window appeared"
    still_home(app)
    assert Recorder.hits == [], f"the page reached the network: {Recorder.hits}"


def test_the_page_cannot_reach_the_network(app: Driver, server: str) -> None:
    app.expect_console(CSP)
    app.expect_blocked(r"^http://127\.0\.0\.1")
    outcome = app.run(f"""
        const base = {json.dumps(server)};
        const out = {{}};
        try {{ await fetch(base + '/fetch'); out.fetch = 'loaded'; }} catch (e) {{ out.fetch = e.name; }}
        out.img = await new Promise((r) => {{ const i = new Image(); i.onload = () => r('loaded');
            i.onerror = () => r('error'); i.src = base + '/img.png'; }});
        out.script = await new Promise((r) => {{ const s = document.createElement('script');
            s.onload = () => r('loaded'); s.onerror = () => r('error'); s.src = base + '/x.js';
            document.head.append(s); }});
        out.xhr = await new Promise((r) => {{ const x = new XMLHttpRequest();
            x.onload = () => r('loaded'); x.onerror = () => r('error');
            try {{ x.open('GET', base + '/xhr'); x.send(); }} catch (e) {{ r(e.name); }} }});
        navigator.sendBeacon(base + '/beacon', 'x');  // may say true: it only queues
        out.ws = await new Promise((r) => {{ try {{ const w = new WebSocket(base.replace('http', 'ws'));
            w.onopen = () => r('open'); w.onerror = () => r('error'); }} catch (e) {{ r(e.name); }} }});
        await new Promise((r) => setTimeout(r, 200));
        out.net = String(window.__net);
        return out;""")
    assert outcome["fetch"] == "TypeError" and outcome["img"] == outcome["script"] == outcome["xhr"] == "error"
    assert outcome["ws"] in ("error", "SecurityError", "SyntaxError")
    assert outcome["net"] == "undefined"
    spin(200)
    assert Recorder.hits == [], f"the page reached the network: {Recorder.hits}"


def _load_script(app: Driver, url: str, module: bool = False) -> str:
    return str(app.run(f"""return await new Promise((r) => {{ const s = document.createElement('script');
        if ({json.dumps(module)}) s.type = 'module';
        s.onload = () => r('loaded'); s.onerror = () => r('error'); s.src = {json.dumps(url)};
        document.head.append(s); }});"""))


def test_app_urls_cannot_leave_the_web_folder(app: Driver, tmp_path: Path) -> None:
    app.expect_console(r"Failed to load resource")
    secret = tmp_path / "leak.js"
    secret.write_text("window.__leak = 1;\n", encoding="utf-8")
    ups = "../" * (len(paths.resource("web").resolve().parts) + 2)
    target = str(secret).lstrip("/")
    tricks = [f"fieldmark://app/{ups}{target}",
              f"fieldmark://app/{ups.replace('..', '%2e%2e')}{target}",
              f"fieldmark://app/{ups.replace('/', '%2f')}{target.replace('/', '%2f')}",
              f"fieldmark://app/{ups.replace('/', '%5c')}{target}",
              f"fieldmark://app/js/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f{target}",
              "fieldmark://app/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"]
    for url in tricks:
        assert _load_script(app, url) == "error", url
    assert app.js("typeof window.__leak") == "undefined"
    # A real file of the app still loads, so "error" above is not the only possible answer.
    assert _load_script(app, "fieldmark://app/js/icons.js", module=True) == "loaded"
    assert app.call("app.ping", {"value": 1}) == {"ok": {"value": 1}}


def test_bad_pixel_requests_fail_cleanly(app: Driver) -> None:
    app.expect_console(r"Failed to load resource")
    image_id = app.current_id()
    urls = ["pixels/image/999999", "pixels/thumb/999999", "pixels/image/abc", "pixels/image/-1",
            f"pixels/image/{image_id}?page=99", f"pixels/image/{image_id}?lo=90&hi=10",
            f"pixels/image/{image_id}?channels=7", "pixels/nothing/1"]
    results = app.run(f"""
        const load = (u) => new Promise((r) => {{ const i = new Image();
            i.onload = () => r('loaded'); i.onerror = () => r('error'); i.src = u; }});
        const out = [];
        for (const u of {json.dumps(urls)}) out.push(await load(u));
        out.push(await load('pixels/image/{image_id}?page=0'));
        return out;""")
    assert results == ["error"] * len(urls) + ["loaded"], dict(zip([*urls, "good"], results, strict=True))
    record = app.api.require_project().image(image_id)
    assert record["error"] is None, "a bad request must not mark a good image unreadable"
    app.settle()
    assert app.js("window.fieldmark.errors.length") == 0
    assert app.js("window.fieldmark.state.imageError") is None


def test_bridge_refuses_bad_arguments_with_clear_errors(app: Driver, tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("hello", encoding="utf-8")
    for path in (str(a_file), str(tmp_path / "no such folder")):
        answer = app.call("project.open", {"path": path})
        assert answer["error"]["code"] == "not_a_folder", answer
        assert path in answer["error"]["message"] and "folder" in answer["error"]["message"]
    answer = app.call("project.open", {"path": 42})
    assert answer["error"]["code"] == "invalid_argument" and "'path'" in answer["error"]["message"]
    assert app.js("window.fieldmark.state.project.name") == "photos", "the open project stays open"

    image_id = app.current_id()
    for kind, geometry, field in (("box", [1, 2, 3], "geometry"), ("box", [0, 0, "a", 1], "geometry[2]"),
                                  ("polygon", [[0, 0], [1, 1]], "geometry"), ("point", {"x": 1}, "geometry"),
                                  ("circle", [1, 2], "kind")):
        answer = app.call("shapes.add", {"image_id": image_id, "kind": kind, "geometry": geometry})
        assert answer["error"]["code"] == "invalid_argument", (kind, geometry, answer)
        assert field in answer["error"]["message"], (field, answer["error"]["message"])
    answer = app.call("shapes.add", {"image_id": image_id, "kind": "box"})
    assert answer["error"]["code"] == "invalid_argument" and answer["error"]["detail"] == {"field": "geometry"}
    answer = app.call("shapes.add", {"image_id": "1", "kind": "box", "geometry": [0, 0, 1, 1]})
    assert answer["error"]["code"] == "invalid_argument" and "image_id" in answer["error"]["message"]
    assert app.call("no.such.method")["error"]["code"] == "unknown_method"
    assert app.store_shapes(image_id) == []
