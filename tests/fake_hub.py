"""A minimal local stand-in for the Hugging Face Hub HTTP API: enough of it for `create_repo`, `upload_folder` and
downloading a committed file (`hf_hub_download`, `ModelCard.load`).

It answers every upload as a regular (non-LFS) file, so commits carry the files' contents inline and are recorded
here; nothing leaves the machine.
"""

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self, refuse_commits: bool = False):
        """`refuse_commits`: create repositories but answer every commit 403, as a Hub that refuses the upload."""
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, payload):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.requests.append(("POST", self.path))
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    request = json.loads(body)
                    repo_id = f"{request.get('organization') or 'user'}/{request['name']}"
                    hub.repos.setdefault(repo_id, {})
                    return self._reply(200, {"url": f"{hub.endpoint}/{repo_id}", "name": repo_id})
                if path == "/api/validate-yaml":  # model card metadata check
                    return self._reply(200, {"errors": [], "warnings": []})
                parts = path.strip("/").split("/")  # api/models/<namespace>/<name>/<action>/<revision>
                if len(parts) >= 6 and parts[0] == "api" and parts[1] == "models":
                    repo_id, action = f"{parts[2]}/{parts[3]}", parts[4]
                    if action == "preupload":
                        files = json.loads(body)["files"]
                        return self._reply(
                            200,
                            {
                                "files": [
                                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                                ]
                            },
                        )
                    if action == "commit" and refuse_commits:
                        return self._reply(403, {"error": "fake hub: this token may not write to the repository"})
                    if action == "commit":
                        for line in body.decode().splitlines():
                            item = json.loads(line)
                            if item["key"] == "file":
                                hub.repos.setdefault(repo_id, {})[item["value"]["path"]] = base64.b64decode(
                                    item["value"]["content"]
                                )
                        return self._reply(
                            200, {"commitUrl": f"{hub.endpoint}/{repo_id}/commit/0", "commitOid": "0" * 40}
                        )
                self._reply(404, {"error": f"fake hub: unsupported {path}"})

            def _file(self):
                """A committed file at `/<namespace>/<name>/resolve/<revision>/<path>`, as hf_hub_download asks."""
                parts = self.path.split("?")[0].strip("/").split("/", 4)
                if len(parts) == 5 and parts[2] == "resolve":
                    return hub.repos.get(f"{parts[0]}/{parts[1]}", {}).get(parts[4])
                return None

            def _send_file(self, content: bytes, with_body: bool):
                self.send_response(200)
                self.send_header("Content-Length", str(len(content)))
                self.send_header("ETag", f'"{hashlib.sha1(content).hexdigest()}"')
                self.send_header("X-Repo-Commit", "0" * 40)
                self.end_headers()
                if with_body:
                    self.wfile.write(content)

            def do_HEAD(self):
                hub.requests.append(("HEAD", self.path))
                content = self._file()
                if content is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._send_file(content, with_body=False)

            def do_GET(self):
                hub.requests.append(("GET", self.path))
                content = self._file()
                if content is not None:
                    return self._send_file(content, with_body=True)
                self._reply(404, {"error": f"fake hub: unsupported {self.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
