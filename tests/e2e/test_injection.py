"""Hostile text in every place the page shows names: it is shown literally and never runs.

Class names, file names, a project folder, prompt phrases, imported COCO / labelme files, model
pack names and the error messages that quote them all carry payloads whose code would set
``window.__pwned`` or call the bridge to add a class named ``pwned``. Each test asserts that the
text appears exactly as written where a person reads it, that nothing ran, and (through a
MutationObserver installed before the payloads arrive) that no element was ever made from them,
not even for a moment. CSP would stop inline handlers anyway; the observer proves the text was
never parsed as HTML in the first place. test_untrusted_text.py has the typed-in class name and
the file name in the list; test_security.py the CSP, navigation, network and URL basics.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from backend.gui.waiting import spin
from backend.models import pack as packs
from tests.e2e.harness import Driver, Launcher
from tests.e2e.projects import make_project
from tests.e2e.test_security import CSP, Recorder, server, still_home

__all__ = ["server"]  # the local "network" fixture, shared with test_security.py

pytestmark = pytest.mark.e2e

MARK = "window.__pwned=1"
WRITE = "fieldmark.api('classes.add',{name:'pwned'})"
NET = "http://127.0.0.1:9"  # nothing listens; a request there would still be a blocked request

# Class names and prompt phrases (<= 200 characters, no control characters).
NAMES = [
    f'<img src=x onerror="{MARK}">',
    f"<script>{MARK}</script>",
    f'"><svg onload="{WRITE}">',
    f"javascript:{MARK}",
    "{{constructor.constructor('" + MARK + "')()}}",
    f"</style><style>*{{background:url({NET}/css)}}</style>",
    "\u202egnp.exe\u200b\u200d<b>rtl</b>\ufeff",
    "${" + MARK + "}`'\"",
    f"<iframe srcdoc='<script>parent.{MARK}</script>'></iframe>",
    f'<meta http-equiv="refresh" content="0;url={NET}/">',
    f'<a href="javascript:{MARK}" target=_blank>x</a>' + "W" * 130,
]
# File and folder names cannot hold '/'.
FILES = [
    f'<img src=x onerror="{MARK}">.png',
    f'"><svg onload="{WRITE}">.png',
    f"javascript:{MARK}.png",
    "{{constructor.constructor('" + MARK + "')()}}.png",
    "\u202egnp.exe\u200b.png",
]
BROKEN = f"<img src=y onerror={MARK}> broken.png"
SOURCE = "owlv2-injection@1.0"

# Records every element the page adds that could run code or load something: an on* attribute,
# a script/iframe/meta/style/..., a link with an href, an image from outside the app.
WATCH = """(() => {
  if (window.__watch) return true;
  const seen = window.__watch = [];
  const tags = new Set(['SCRIPT', 'IFRAME', 'FRAME', 'OBJECT', 'EMBED', 'META', 'BASE', 'FORM', 'STYLE', 'A', 'LINK']);
  const bad = (n) => [...n.attributes].some((a) => a.name.startsWith('on'))
    || tags.has(n.tagName.toUpperCase()) || (n.tagName === 'IMG' && n.hasAttribute('src') && !n.src.startsWith('fieldmark://app/'));
  const check = (node) => {
    if (!(node instanceof Element)) return;
    for (const n of [node, ...node.querySelectorAll('*')]) if (bad(n)) seen.push(n.outerHTML.slice(0, 200));
  };
  new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes) check(n); })
    .observe(document, { subtree: true, childList: true });
  return true;
})()"""


def watch(app: Driver) -> None:
    app.js(WATCH)


def assert_inert(app: Driver) -> None:
    """Nothing ran, no element came from the text, and the bridge was not called by it."""
    spin(50)  # a payload that had run would have had its event loop turn
    assert app.js("typeof window.__pwned") == "undefined", "markup from a name was executed"
    assert app.js("window.__watch") == [], "an element was made from hostile text"
    assert app.js("""[...document.querySelectorAll('body *')].filter((n) =>
        [...n.attributes].some((a) => a.name.startsWith('on'))).length""") == 0
    assert app.js("document.querySelectorAll('body script, body iframe, body style, body meta, a[href]').length") == 0
    project = app.api.project
    if project is not None:
        assert "pwned" not in [c["name"] for c in project.classes()], "the bridge was called by a payload"


def texts(app: Driver, selector: str, prop: str = "textContent") -> list[str]:
    return list(app.js(f"[...document.querySelectorAll({json.dumps(selector)})].map((e) => e.{prop})"))


def hostile_project(tmp_path: Path) -> Path:
    """A project in a folder with markup in its name (and its parent's), images named likewise,
    one of them unreadable."""
    folder = tmp_path / f"<svg onload={MARK}>" / 'field "<b>photos<i>"'
    make_project(folder, {name: (160 + 20 * i, 120) for i, name in enumerate(FILES)})
    (folder / BROKEN).write_bytes(b"this is not a picture")
    return folder


def refresh(app: Driver) -> None:
    app.run(f"""await window.fieldmark.actions.refreshClasses();
        await window.fieldmark.actions.refreshImages();
        await window.fieldmark.actions.selectImage({app.current_id()});
        await window.fieldmark.ai.review.loadQueue(); return true;""")
    app.settle()


def test_class_names_and_prompts_show_as_text_in_every_panel(launcher: Launcher, tmp_path: Path) -> None:
    folder = hostile_project(tmp_path)
    app = launcher(folder)
    watch(app)
    ids = [app.call("classes.add", {"name": name})["ok"]["id"] for name in NAMES]
    project = app.api.require_project()
    image_id = app.current_id()
    # One proposal per class, its prompt the same hostile text, as a detector would store them.
    proposals = project.replace_proposals(image_id, SOURCE, [
        {"kind": "box", "geometry": [2 + i, 2 + i, 30 + 10 * i, 40 + 5 * i], "class_id": cid,
         "score": 0.9 - i / 50, "prompt": name} for i, (cid, name) in enumerate(zip(ids, NAMES, strict=True))],
        suppress_iou=1.0)
    assert len(proposals) == len(NAMES)
    assert app.call("classes.set_prompts", {"id": ids[0], "prompts": NAMES[:6], "threshold": 0.3})["ok"]
    refresh(app)

    assert sorted(texts(app, "#classes .class-name")) == sorted(NAMES)
    assert sorted(texts(app, "#classes .class-name", "title")) == sorted(f"{n} — double-click to rename" for n in NAMES)

    # The provenance card of each proposal: its class and its prompt, as written.
    for _ in NAMES:
        app.key(Qt.Key.Key_Tab)
        app.settle()
        shape = project.shape(app.js("window.fieldmark.state.selectedId"))
        card = app.js("document.querySelector('.selection-card').textContent")
        name = NAMES[ids.index(shape["class_id"])]
        assert name in card and SOURCE in card, (name, card)
        assert card.count(name) >= 2, "the class and the prompt are both shown"

    app.click_element("#tab-review")
    app.settle()
    assert sorted(texts(app, "#pane-review .queue-class")) == sorted(NAMES)
    assert set(texts(app, "#pane-review .queue-image")) == {app.current_name()}
    assert app.current_name() in FILES

    app.click_element("#tab-assist")
    app.settle()
    assert NAMES[0] in texts(app, "#pane-assist .prompt-class")
    assert texts(app, f"#pane-assist .prompt-card[data-id='{ids[0]}'] .phrase-input", "value") == NAMES[:6]
    assert sorted(texts(app, "#pane-assist .suggest-name")) == sorted(NAMES[1:])

    # Merging offers the other classes by name (a dialog of radio labels).
    app.click_element("#tab-classes")
    row = f'#classes .class-row[data-id="{ids[0]}"]'
    app.hover_element(row)
    app.click_element(f'{row} button[aria-label^="Merge"]')
    app.settle()
    assert sorted(texts(app, ".dialog .choice-label")) == sorted(NAMES[1:])
    app.click_text(".dialog .btn", "Cancel")
    app.settle()

    # The folder: the toolbar and the window title (plain text in Qt) show its name as written.
    assert texts(app, "#toolbar .project-name") == [folder.name]
    assert texts(app, "#toolbar .project-name", "title") == [str(folder)]
    assert app.call("project.open", {"path": str(folder)})["ok"]["name"] == folder.name
    app.settle()
    assert app.window.windowTitle() == f"{folder.name} — Fieldmark"
    assert_inert(app)


def test_file_names_and_their_errors_show_as_text(launcher: Launcher, tmp_path: Path) -> None:
    folder = hostile_project(tmp_path)
    app = launcher(folder)
    watch(app)
    app.wait_for(f"window.fieldmark.state.images.some((im) => im.name === {json.dumps(BROKEN)} && im.error)",
                 what="the unreadable file to be found")
    app.settle()
    assert sorted(app.list_names()) == sorted([*FILES, BROKEN])
    broken = app.image_id(BROKEN)
    row = f'#images .row[data-id="{broken}"]'
    title = app.js(f"document.querySelector('{row}').title")
    assert title.startswith(f"{BROKEN}\n"), title
    app.click_element(row)
    app.settle()
    assert app.js("document.querySelector('.viewer-head .image-name').textContent") == BROKEN
    # A toast quoting a name: what the shell does when the file is dropped on the window.
    app.expect_toast("not a folder")
    missing = str(folder / BROKEN)
    app.window.bridge.publish("app.error", app.api.call("project.open", {"path": missing})["error"])
    app.wait_for("!!document.querySelector('.toast-error .toast-message')", what="the error toast")
    assert missing in texts(app, ".toast-error .toast-message")[-1]
    app.click_element(".toast-error .toast-close")  # out of the way of the dialogs' buttons
    app.wait_for("!document.querySelector('.toast')", what="the toast to go")
    for name in FILES:
        app.click_element(f'#images .row[data-id="{app.image_id(name)}"]')
        app.settle()
        assert app.js("document.querySelector('.viewer-head .image-name').textContent") == name

    # The export summary lists what it left out by image name (a point cannot be COCO).
    project = app.api.require_project()
    project.add_shape(app.image_id(FILES[1]), "point", [10, 10], project.add_class(NAMES[2])["id"])
    out = tmp_path / f"<img src=x onerror={MARK}> exports"
    out.mkdir()
    app.api.pick_path = lambda kind, title, name_filter="": str(out)  # type: ignore[attr-defined]
    app.key(Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)  # Dataset > Export
    app.wait_for("!!document.querySelector('.dialog-xfer .xfer-format.active')", what="the export dialog")
    app.settle()
    app.click_element('[data-action="choose-out"]')
    app.settle()
    assert texts(app, ".xfer-target") == [f"Writes {out / (folder.name + '-coco')}"]
    app.click_element('[data-action="export"]')
    app.wait_for("!!document.querySelector('.xfer-done')", what="the export summary")
    app.run("document.querySelectorAll('.xfer-summary details').forEach((d) => { d.open = true; }); return 1")
    app.settle()
    assert texts(app, ".xfer-done .xfer-path") == [str(out / f"{folder.name}-coco")]
    assert any(FILES[1] in item for item in texts(app, ".xfer-items li")), texts(app, ".xfer-items li")
    app.click_element('[data-action="close"]')
    app.settle()
    assert_inert(app)


def coco_file(path: Path) -> Path:
    """COCO with hostile category names; one image matches a project file, two name files that
    are not there (hostile names: the import report quotes them)."""
    images = [{"id": 1, "file_name": FILES[0], "width": 160, "height": 120},
              {"id": 2, "file_name": BROKEN.replace("broken", "missing"), "width": 10, "height": 10},
              {"id": 3, "file_name": f"sub dir\u202e<script>{MARK}<\\script>.png", "width": 10, "height": 10}]
    categories = [{"id": i + 1, "name": name, "supercategory": name} for i, name in enumerate(NAMES)]
    annotations = [{"id": i + 1, "image_id": 1, "category_id": i + 1, "bbox": [2 + i, 2, 20, 20],
                    "area": 400, "iscrowd": 0} for i in range(len(NAMES))]
    annotations += [{"id": 100 + k, "image_id": k, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25,
                     "iscrowd": 0} for k in (2, 3)]
    path.write_text(json.dumps({"images": images, "categories": categories, "annotations": annotations}),
                    encoding="utf-8")
    return path


def test_imported_coco_and_labelme_names_show_as_text(launcher: Launcher, tmp_path: Path) -> None:
    folder = hostile_project(tmp_path)
    source = coco_file(tmp_path / f"<img src=x onerror={MARK}>.json")
    app = launcher(folder)
    watch(app)
    app.api.pick_path = lambda kind, title, name_filter="": str(source)  # type: ignore[attr-defined]
    app.key(Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)  # Dataset > Import
    app.wait_for("!!document.querySelector('.dialog-xfer .xfer-format.active')", what="the import dialog")
    app.settle()
    app.click_element('[data-action="choose-source"]')
    app.settle()
    assert texts(app, ".dialog-xfer .xfer-path") == [str(source)]
    app.click_element('[data-action="import"]')
    app.settle()
    app.wait_for("!!document.querySelector('.xfer-done')", what="the import report")
    app.settle()
    assert sorted(texts(app, ".xfer-summary strong")) == sorted(NAMES), "new classes, each as written"
    assert texts(app, ".xfer-done .xfer-path") == [str(source)]
    app.run("document.querySelectorAll('.xfer-summary details').forEach((d) => { d.open = true; }); return 1")
    app.settle()
    report = app.js("document.querySelector('.xfer-summary').textContent")
    stored = app.api.require_project().classes()  # the store holds the names unchanged
    assert sorted(c["name"] for c in stored) == sorted(NAMES)
    for name in (BROKEN.replace("broken", "missing"), f"sub dir\u202e<script>{MARK}<\\script>.png"):
        assert name in report, f"the skipped file {name!r} is named in the report"
    app.click_element('[data-action="close"]')
    app.settle()
    assert sorted(texts(app, "#classes .class-name")) == sorted(NAMES)

    # labelme files beside the images (inside the project: no dialog needed), hostile labels.
    labels = [f"<img src=z onerror={MARK}> lm", f"lm \u200b<svg/onload={WRITE}>"]
    (folder / (Path(FILES[1]).stem + ".json")).write_text(json.dumps({
        "version": "5.0.0", "flags": {}, "imagePath": FILES[1], "imageData": None,
        "imageHeight": 120, "imageWidth": 180,
        "shapes": [{"label": label, "points": [[5, 5], [40, 40]], "shape_type": "rectangle",
                    "flags": {}, "group_id": None, "description": label} for label in labels]}),
        encoding="utf-8")
    result = app.call_job("import.run", {"format": "labelme", "path": str(folder)})
    assert sorted(result["classes_added"]) == sorted(labels)
    app.run("await window.fieldmark.actions.refreshClasses(); return 1")
    app.settle()
    assert sorted(texts(app, "#classes .class-name")) == sorted([*NAMES, *labels])
    assert_inert(app)


def fake_pack(root: Path, pack_id: str, name: str) -> Path:
    """A pack that installs (manifest, checksums, a loadable graph) and is never run."""
    from onnx import TensorProto, helper

    root.mkdir(parents=True)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (root / "encoder.onnx").write_bytes(model.SerializeToString())
    packs.write_pack(root, {
        "id": pack_id, "name": name, "version": "1.0.0", "task": "detector", "family": "owlv2",
        "license": f"<b>{MARK}</b>", "source": {"checkpoint": name}, "preprocessing": {}, "config": {},
        "io": {"graphs": {"encoder": {"file": "encoder.onnx", "inputs": {"x": [1]}, "outputs": {"y": [1]}}}}})
    return root


def test_pack_names_and_install_errors_show_as_text(launcher: Launcher, ai_env: Path, tmp_path: Path) -> None:
    names = [NAMES[0], NAMES[2], NAMES[6]]
    sources = [fake_pack(tmp_path / f"pack{i}", f"evil-{i}", name) for i, name in enumerate(names)]
    broken = ai_env / f'"><img src=x onerror={MARK}>'
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text(f'{{"id": "<script>{MARK}</script>"', encoding="utf-8")
    app = launcher(make_project(tmp_path / "photos"))
    watch(app)
    for src in sources:
        app.install_pack(src)
    app.click_element(".models-btn")
    app.wait_for("!!document.querySelector('.dialog-models .device-line')", what="the Models dialog")
    app.settle()
    shown = dict(zip(texts(app, ".dialog-models .pack-row[data-pack^='evil']", "dataset.pack"),
                     texts(app, ".dialog-models .pack-row[data-pack^='evil'] .pack-name"), strict=True))
    assert shown == {f"evil-{i}": name for i, name in enumerate(names)}
    assert sorted(texts(app, ".dialog-models .pack-row[data-pack^='evil'] input", "getAttribute('aria-label')")) \
        == sorted(f"Use {n}" for n in names)
    (item,) = texts(app, ".dialog-models .models-broken li")
    assert item.startswith(f"{broken} — ") and "not valid JSON" in item

    # Installing something that is not a pack: the error quotes the hostile path, as text.
    not_a_pack = tmp_path / f"<svg onload={MARK}> not a pack"
    not_a_pack.mkdir()
    app.api.pick_pack = lambda: str(not_a_pack)  # type: ignore[attr-defined]
    app.expect_toast("manifest.json")
    app.click_element(".dialog-models .models-install .btn-primary")
    app.wait_for("!!document.querySelector('.toast-error .toast-message')", what="the install error")
    assert str(not_a_pack) in texts(app, ".toast-error .toast-message")[-1]
    assert_inert(app)


# -- the cage: more ways out than test_security.py tries ------------------------------------------

def test_no_other_way_out_navigates_opens_or_reaches_the_network(app: Driver, server: str) -> None:
    app.expect_console(CSP)
    app.expect_console(r"Failed to load resource|Not allowed to load|Unsafe attempt|SecurityError")
    app.expect_blocked(r"^http://127\.0\.0\.1")
    app.js("window.__marker = 1")
    windows = len(QApplication.topLevelWidgets())
    outcome = app.run(f"""
        const base = {json.dumps(server)};
        const out = {{}};
        const tryIt = async (name, fn) => {{ try {{ out[name] = String(await fn()); }} catch (e) {{ out[name] = e.name; }} }};
        const add = (tag, props, where = document.body) => {{
            const el = document.createElement(tag); Object.assign(el, props); where.append(el); return el; }};
        await tryIt('form', () => {{ const f = add('form', {{action: base + '/form', method: 'post'}});
            f.submit(); f.target = '_blank'; f.submit(); f.remove(); return 'submitted'; }});
        await tryIt('anchor', () => {{ for (const target of ['_self', '_blank', '_top']) {{
            const a = add('a', {{href: base + '/a-' + target, target}}); a.click(); a.remove(); }}
            const d = add('a', {{href: base + '/download', download: 'x.txt'}}); d.click(); d.remove();
            const j = add('a', {{href: 'javascript:{MARK}'}}); j.click(); j.remove(); return 'clicked'; }});
        await tryIt('meta', () => {{ add('meta', {{httpEquiv: 'refresh', content: '0;url=' + base + '/meta'}}, document.head); return 'added'; }});
        await tryIt('replace', () => {{ location.replace(base + '/replace'); return 'asked'; }});
        await tryIt('assign', () => {{ location.assign('javascript:{MARK}'); return 'asked'; }});
        await tryIt('push', () => {{ history.pushState({{}}, '', base + '/push'); return 'pushed'; }});
        await tryIt('frames', () => {{ for (const src of [base + '/frame', 'data:text/html,<script>parent.{MARK}<\\/script>'])
            add('iframe', {{src}}); add('iframe', {{srcdoc: '<script>parent.{MARK}<\\/script>'}});
            add('object', {{data: base + '/object'}}); add('embed', {{src: base + '/embed'}}); return 'added'; }});
        await tryIt('css', () => {{ document.body.style.backgroundImage = 'url(' + base + '/inline-css)';
            const sheet = new CSSStyleSheet(); sheet.replaceSync('body {{ background: url(' + base + '/sheet) }}');
            document.adoptedStyleSheets = [sheet];
            add('link', {{rel: 'stylesheet', href: base + '/x.css'}}, document.head);
            add('link', {{rel: 'prefetch', href: base + '/prefetch'}}, document.head);
            add('link', {{rel: 'preload', as: 'image', href: base + '/preload'}}, document.head); return 'set'; }});
        await tryIt('font', () => new FontFace('x', 'url(' + base + '/font)').load().then(() => 'loaded'));
        await tryIt('media', () => {{ add('video', {{src: base + '/v.mp4'}}); add('audio', {{src: base + '/a.mp3'}}); return 'added'; }});
        await tryIt('events', () => new Promise((r) => {{ const es = new EventSource(base + '/es');
            es.onopen = () => r('open'); es.onerror = () => {{ es.close(); r('error'); }}; }}));
        await tryIt('worker', () => {{ new Worker(base + '/w.js'); return 'made'; }});
        await tryIt('module', () => import(base + '/m.js').then(() => 'loaded'));
        await tryIt('beacon', () => navigator.sendBeacon(base + '/beacon', 'x'));
        await new Promise((r) => setTimeout(r, 300));
        document.body.style.backgroundImage = ''; document.adoptedStyleSheets = [];
        document.querySelectorAll('body > iframe, body > object, body > embed, body > video, body > audio, head > meta[http-equiv="refresh"], head > link[href^="http"]').forEach((e) => e.remove());
        out.pwned = String(window.__pwned);
        return out;""")
    assert outcome["font"] in ("NetworkError", "SecurityError"), outcome
    assert outcome["events"] in ("error", "SecurityError"), outcome
    assert outcome["worker"] == "SecurityError" and outcome["module"] == "TypeError", outcome
    assert outcome["push"] == "SecurityError", outcome
    assert outcome["pwned"] == "undefined", outcome
    spin(300)
    still_home(app)
    assert len(QApplication.topLevelWidgets()) == windows, "a new window appeared"
    assert Recorder.hits == [], f"the page reached the network: {Recorder.hits}"


def _loads(app: Driver, tag: str, urls: list[str]) -> list[str]:
    """'loaded' or 'error' for each URL put in a new ``tag`` (img, or a classic script)."""
    return list(app.run(f"""
        const one = (u) => new Promise((r) => {{ const el = document.createElement({json.dumps(tag)});
            el.onload = () => r('loaded'); el.onerror = () => r('error'); el.src = u;
            if ({json.dumps(tag)} === 'script') document.head.append(el); }});
        const out = [];
        for (const u of {json.dumps(urls)}) out.push(await one(u));
        document.querySelectorAll('head > script[src]:not([src="qwebchannel.js"])').forEach((s) => s.remove());
        return out;"""))


def test_local_files_stay_out_of_reach(app: Driver, tmp_path: Path) -> None:
    app.expect_console(r"Failed to load resource|Not allowed to load local resource|" + CSP)
    app.expect_blocked(r"^file://")
    secret = make_project(tmp_path / "secret", {"secret.png": (8, 8)}) / "secret.png"
    (tmp_path / "secret" / "leak.js").write_text(f"{MARK};\n", encoding="utf-8")
    target = str(secret.parent).lstrip("/")
    ups = "../" * 12
    image_id = app.current_id()
    pictures = [f"file://{secret}", f"fieldmark://app/{ups}{target}/secret.png",
                f"fieldmark://app/{ups.replace('..', '%2e%2e')}{target}/secret.png",
                f"fieldmark://app/{ups.replace('/', '%2f')}{target}/secret.png",
                f"fieldmark://app//{target}/secret.png", f"fieldmark:///{target}/secret.png",
                f"fieldmark://other/{target}/secret.png", f"fieldmark://app/img/..%2f..%2f{ups}{target}/secret.png",
                f"fieldmark://app/pixels/image/{image_id}/{ups}{target}/secret.png",
                f"fieldmark://app/pixels/image/{image_id}%2f..%2f..%2f..%2f{target}%2fsecret.png",
                f"fieldmark://app/pixels/image/{image_id}%00", f"fieldmark://app/pixels/image/{image_id}.png",
                f"fieldmark://app/pixels/image/ {image_id}", "fieldmark://app/pixels/image/0x1",
                "fieldmark://app/pixels/image/1e3", "fieldmark://app/pixels/thumb/%2e%2e",
                "fieldmark://app/../backend/api/validate.py", "fieldmark://app/index.html/../../main.py",
                "fieldmark://app/pixels/image/99999999999999999999999", "fieldmark://app/pixels/thumb/\u0663",
                f"fieldmark://app/pixels/image/{image_id}?page=99999999999999999999999"]
    assert _loads(app, "img", pictures) == ["error"] * len(pictures), dict(zip(pictures, _loads(app, "img", pictures), strict=True))
    scripts = [f"file://{secret.parent}/leak.js", f"fieldmark://app/{ups}{target}/leak.js",
               f"fieldmark://app/js/{ups.replace('/', '%5c')}{target}/leak.js"]
    assert _loads(app, "script", scripts) == ["error"] * len(scripts)
    # A real picture and a real app file still load, so "error" is not the only answer.
    assert _loads(app, "img", [f"pixels/thumb/{image_id}", "img/icon.svg"]) == ["loaded", "loaded"]
    assert app.js("typeof window.__pwned") == "undefined"
    assert app.api.require_project().image(image_id)["error"] is None


def test_the_page_cannot_open_a_folder_the_person_never_chose(launcher: Launcher, tmp_path: Path) -> None:
    photos = make_project(tmp_path / "photos")
    home = tmp_path / "someone's home"
    (home / "Documents").mkdir(parents=True)
    app = launcher(photos)
    for path in (str(home), f"{photos}/../someone's home/Documents", "/"):
        answer = app.call("project.open", {"path": path})
        assert answer["error"]["code"] == "not_picked", answer
        assert "Open folder (Ctrl+O)" in answer["error"]["message"]
    assert not list(home.rglob(".fieldmark")), "nothing was written into the folder"
    assert app.js("window.fieldmark.state.project.path") == str(photos)
    assert app.api.require_project().folder == photos
