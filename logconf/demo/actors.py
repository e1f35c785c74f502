"""Ray actors of the demo job: vLLM engines and a trainer. Ray workers import them from here."""

from __future__ import annotations

import asyncio
import logging
import random

import ray


def _engine_args(model: str):
    from vllm import AsyncEngineArgs

    from logconf.demo.hooks import engine_kwargs

    return AsyncEngineArgs(
        model=model,
        skip_tokenizer_init=True,
        enforce_eager=True,
        max_model_len=128,
        dtype="float32",
        **engine_kwargs(),
    )


class _Engine:
    """What SkyRL's async engine does: an AsyncLLM that answers generation requests."""

    def _start(self, model: str) -> None:
        from vllm.v1.engine.async_llm import AsyncLLM

        self.engine = AsyncLLM.from_engine_args(_engine_args(model))
        self.requests = 0

    async def generate(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=0)

        async def one(prompt: list[int]) -> list[int]:
            self.requests += 1
            final = None
            async for out in self.engine.generate({"prompt_token_ids": prompt}, params, request_id=f"req-{self.requests}"):
                final = out
            assert final is not None
            return list(final.outputs[0].token_ids)

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    def pids(self) -> dict[str, int]:
        import os

        return {"actor": os.getpid()}

    def shutdown(self) -> None:
        self.engine.shutdown()


@ray.remote
class EngineActor(_Engine):
    """An engine whose rank comes from its runtime_env (``logconf.engine_options``)."""

    def __init__(self, model: str) -> None:
        self._start(model)


def _reward_model(reward: float) -> float:
    """The demo's one failure: a reward model that never answers (an ERROR with a traceback at step 1)."""
    raise TimeoutError(f"reward model did not answer within 30 s (a demo failure; length reward {reward:.3f})")


@ray.remote
class TrainerActor:
    """A SkyRL-shaped trainer: rollouts from the engines, rewards, a weight sync per step."""

    def __init__(self) -> None:
        import logconf
        from logconf.demo.hooks import loguru_module

        self.loguru_steps = loguru_module()  # None unless LOGCONF_DEMO_LOGURU=1
        logconf.apply()
        if self.loguru_steps is not None:
            self.loguru_steps.ready()
        self.log = logging.getLogger("skyrl_train.trainer")
        self.rollout_log = logging.getLogger("harbor.rollout")
        self.sync_log = logging.getLogger("skyrl_train.weight_sync")
        self.log.info("trainer ready")

    def train(self, engines: list, steps: int, prompts_per_engine: int, max_tokens: int) -> dict:
        rng = random.Random(0)
        tokens = 0
        for step in range(steps):
            prompts = [[rng.randrange(1, 500) for _ in range(8)] for _ in range(prompts_per_engine)]
            results = ray.get([engine.generate.remote(prompts, max_tokens) for engine in engines])
            for index, outputs in enumerate(results):
                for out in outputs:
                    tokens += len(out)
                    self.rollout_log.info("engine %d returned %d tokens", index, len(out))
            reward = sum(len(o) for outs in results for o in outs) / max(1, sum(len(outs) for outs in results))
            if step == 1:
                try:
                    _reward_model(reward)
                except TimeoutError:  # as a trainer does: the step goes on, the error is in the log with its traceback
                    self.log.exception("step %d: the reward model failed; this step keeps the length reward", step)
            self.log.info("step %d: reward %.3f over %d rollouts", step, reward, sum(len(r) for r in results))
            self.sync_log.info("step %d: synced policy weights to %d engines", step, len(engines))
            if self.loguru_steps is not None:
                self.loguru_steps.step(step, reward)
        self.log.warning("training finished after %d steps (this warning also reaches the console)", steps)
        if self.loguru_steps is not None:
            self.loguru_steps.finished(steps)
        return {"steps": steps, "tokens": tokens}
