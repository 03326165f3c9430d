# SPDX-License-Identifier: GPL-3.0-or-later
"""TEST DOUBLE of ComfyUI's main.py (not ComfyUI): the command line, start-up traps and HTTP answers
the comfyui role relies on, shaped like upstream v0.3.64 (comfy/cli_args.py, server.py):

- the flags --listen, --port, --cpu, --cuda-device, --base-directory, --extra-model-paths-config,
  --database-url, --disable-auto-launch (others are refused, as argparse does upstream);
- it imports the real torch and picks its device as upstream does: cuda:0 unless --cpu, and without
  --cpu on a host where torch finds no CUDA device it dies ("Found no NVIDIA driver");
- it imports requests, which requirements.txt does not list (upstream's app/frontend_management.py);
- with --base-directory it dies when custom_nodes/ is missing there, and creates input, output, temp
  and user itself; the database goes where --database-url says, else into <code dir>/user/comfyui.db;
- GET /system_stats answers {"system": {...}, "devices": [...]} with torch's device, GET /models and
  /models/<kind> list model files (the models directory and extra_model_paths.yaml), POST /prompt
  queues a prompt and GET /history/<id> answers it finished (enough for Open WebUI's image client).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Upstream imports requests and forgets to list it in requirements.txt.
import requests  # noqa: F401  # pylint: disable=unused-import
import torch
import yaml

VERSION = "0.3.64"
CODE_DIR = Path(__file__).resolve().parent
KINDS = [
    "checkpoints",
    "clip",
    "clip_vision",
    "configs",
    "controlnet",
    "diffusion_models",
    "embeddings",
    "loras",
    "text_encoders",
    "unet",
    "upscale_models",
    "vae",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py")
    parser.add_argument("--listen", nargs="?", const="0.0.0.0,::", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--cuda-device", type=int, default=None)
    parser.add_argument("--base-directory", type=str, default=None)
    parser.add_argument("--extra-model-paths-config", type=str, default=None, action="append", nargs="+")
    parser.add_argument("--database-url", type=str, default=None)
    parser.add_argument("--disable-auto-launch", action="store_true")
    return parser.parse_args(argv)


def device(args: argparse.Namespace) -> dict:
    if args.cpu:
        return {"name": "cpu", "type": "cpu", "index": None, "vram_total": 0, "vram_free": 0}
    if not torch.cuda.is_available():
        sys.exit(
            "RuntimeError: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU "
            "and installed a driver from http://www.nvidia.com/Download/index.aspx"
        )
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "name": f"cuda:{index} {props.name}",
        "type": "cuda",
        "index": index,
        "vram_total": props.total_memory,
        "vram_free": props.total_memory,
    }


def model_dirs(base: Path, configs: list[str]) -> dict[str, list[Path]]:
    dirs = {kind: [base / "models" / kind] for kind in KINDS}
    for config in configs:
        for section in (yaml.safe_load(Path(config).read_text()) or {}).values():
            root = Path(section.pop("base_path", "")).expanduser()
            section.pop("is_default", None)
            for kind, paths in section.items():
                dirs.setdefault(kind, []).extend(
                    root / line.strip() for line in str(paths).splitlines() if line.strip()
                )
    return dirs


def main() -> None:
    args = parse_args(sys.argv[1:])
    # Upstream dies on a host without CUDA (unless --cpu) while importing comfy.model_management, before
    # it looks at any directory.
    dev = device(args)
    base = Path(args.base_directory).resolve() if args.base_directory else CODE_DIR
    if not (base / "custom_nodes").is_dir():
        sys.exit(f"FileNotFoundError: [Errno 2] No such file or directory: '{base / 'custom_nodes'}'")
    for name in ("input", "output", "temp", "user"):
        (base / name).mkdir(exist_ok=True)
    database = args.database_url or f"sqlite:///{CODE_DIR / 'user' / 'comfyui.db'}"
    if not database.startswith("sqlite:///"):
        sys.exit(f"unsupported --database-url {database}")
    Path(database[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(database[len("sqlite:///") :]).execute("CREATE TABLE IF NOT EXISTS alembic_version (v TEXT)")
    configs = [path for group in args.extra_model_paths_config or [] for path in group]
    stats = {
        "system": {
            "os": os.name,
            "python_version": sys.version,
            "comfyui_version": VERSION,
            "pytorch_version": torch.__version__,
            "embedded_python": False,
            "argv": sys.argv,
        },
        "devices": [dev],
    }
    history: dict[str, dict] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *values: object) -> None:  # http.server's signature
            pass

        def answer(self, body: object, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # http.server dispatches on this name
            dirs = model_dirs(base, configs)
            if self.path == "/system_stats":
                self.answer(stats)
            elif self.path == "/models":
                self.answer(sorted(dirs))
            elif self.path.startswith("/models/") and self.path[8:] in dirs:
                found = {p.name for d in dirs[self.path[8:]] if d.is_dir() for p in d.iterdir() if p.is_file()}
                self.answer(sorted(found))
            elif self.path.startswith("/history/"):
                with lock:
                    entry = history.get(self.path[9:])
                self.answer({self.path[9:]: entry} if entry else {})
            else:
                self.answer({"error": "not found"}, 404)

        def do_POST(self) -> None:  # http.server dispatches on this name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if self.path != "/prompt" or "prompt" not in body:
                self.answer({"error": "bad request"}, 400)
                return
            prompt_id = str(uuid.uuid4())
            with lock:
                history[prompt_id] = {
                    "prompt": body["prompt"],
                    "outputs": {},
                    "status": {"status_str": "success", "completed": True},
                }
            self.answer({"prompt_id": prompt_id, "number": len(history), "node_errors": {}})

    host = args.listen.split(",")[0]
    print(f"Device: {dev['name']}\nStarting server\nTo see the GUI go to: http://{host}:{args.port}", flush=True)
    ThreadingHTTPServer((host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
