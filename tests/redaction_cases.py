"""The redaction table: real-world lines holding a secret, each with its exact masked form, and
lines that vLLM, Ray, SkyRL, transformers and huggingface_hub print that mention tokens, keys or
secrets without holding one, each to be written unchanged.

tests/test_redact.py runs every case through the text formatter, the JSON formatter (as the
message and as an extra) and the stdio tee. The keys below are made up, in the shape each
service issues them.
"""

from __future__ import annotations

WANDB = "0123456789abcdef0123456789abcdef01234567"  # 40 hex, as `wandb login` takes
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
OPENAI = "sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678StU901vWx234"
OPENAI_LEGACY = "sk-AbCdEf1234567890AbCdEf1234567890AbCdEf12345678"
ANTHROPIC = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOp-AA"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_SESSION = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD"
GHS = "ghs_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"
AZURE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PEM_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE/Wm/Rr500PRK+Lh9x5eJPo5CAZ3/ANBE"

# name: (line as logged, line as written). Multi-line entries are one record (or several printed lines).
SECRETS: dict[str, tuple[str, str]] = {
    # -- wandb ----------------------------------------------------------------------------------
    "wandb_login_key_flag": (f"+ wandb login --key {WANDB}", "+ wandb login --key ***"),
    "wandb_login_positional": (f"+ wandb login --relogin {WANDB}", "+ wandb login --relogin ***"),
    "wandb_api_key_env": (f"export WANDB_API_KEY={WANDB}", "export WANDB_API_KEY=***"),
    "wandb_key_in_ray_runtime_env": (
        f"runtime_env={{'env_vars': {{'WANDB_API_KEY': '{WANDB}', 'HF_TOKEN': '{HF}'}}}}",
        "runtime_env={'env_vars': {'WANDB_API_KEY': '***', 'HF_TOKEN': '***'}}",
    ),
    # -- Hugging Face -----------------------------------------------------------------------------
    "hf_cli_login_token": (
        f"+ huggingface-cli login --token {HF} --add-to-git-credential",
        "+ huggingface-cli login --token *** --add-to-git-credential",
    ),
    "hf_token_env": (
        f"HF_TOKEN={HF} python -m skyrl.train.entrypoints.main_base",
        "HF_TOKEN=*** python -m skyrl.train.entrypoints.main_base",
    ),
    "hf_hub_token_env": (f"HUGGING_FACE_HUB_TOKEN: {HF}", "HUGGING_FACE_HUB_TOKEN: ***"),
    "hf_token_alone": (f"downloading meta-llama/Llama-3.1-8B with {HF}", "downloading meta-llama/Llama-3.1-8B with hf_***"),
    "hf_authorization_header": (
        f"request headers: {{'authorization': 'Bearer {HF}', 'user-agent': 'unknown/None; hf_hub/0.36.0'}}",
        "request headers: {'authorization': 'Bearer ***', 'user-agent': 'unknown/None; hf_hub/0.36.0'}",
    ),
    "hf_snapshot_download_token_kwarg": (
        f"snapshot_download(repo_id='Qwen/Qwen2.5-1.5B-Instruct', token='{HF}', revision='main')",
        "snapshot_download(repo_id='Qwen/Qwen2.5-1.5B-Instruct', token='***', revision='main')",
    ),
    # -- OpenAI -----------------------------------------------------------------------------------
    "openai_api_key_env": (f"OPENAI_API_KEY={OPENAI}", "OPENAI_API_KEY=***"),
    "openai_client_kwargs": (
        f'client = OpenAI(api_key="{OPENAI}", base_url="http://127.0.0.1:8000/v1")',
        'client = OpenAI(api_key="***", base_url="http://127.0.0.1:8000/v1")',
    ),
    "openai_curl_bearer": (
        f'curl http://127.0.0.1:8000/v1/models -H "Authorization: Bearer {OPENAI_LEGACY}"',
        'curl http://127.0.0.1:8000/v1/models -H "Authorization: Bearer ***"',
    ),
    "openai_key_alone_ending_a_sentence": (f"judge uses {OPENAI_LEGACY}.", "judge uses sk-***."),
    # -- Anthropic --------------------------------------------------------------------------------
    "anthropic_api_key_env": (f"ANTHROPIC_API_KEY='{ANTHROPIC}'", "ANTHROPIC_API_KEY='***'"),
    "anthropic_x_api_key_header": (
        f"headers: {{'x-api-key': '{ANTHROPIC}', 'anthropic-version': '2023-06-01'}}",
        "headers: {'x-api-key': '***', 'anthropic-version': '2023-06-01'}",
    ),
    "anthropic_headers_as_pairs": (
        f"[('x-api-key', '{ANTHROPIC}'), ('anthropic-version', '2023-06-01')]",
        "[('x-api-key', '***'), ('anthropic-version', '2023-06-01')]",
    ),
    "anthropic_key_alone": (f"llm judge key {ANTHROPIC} loaded", "llm judge key sk-*** loaded"),
    # -- AWS --------------------------------------------------------------------------------------
    "aws_secret_access_key_env": (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "AWS_SECRET_ACCESS_KEY=***"),
    "aws_credentials_file_line": (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = ***"),
    "aws_session_token_env": (f"AWS_SESSION_TOKEN={AWS_SESSION}", "AWS_SESSION_TOKEN=***"),
    "aws_sts_credentials_json": (
        f'{{"Credentials": {{"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "{AWS_SECRET}", '
        f'"SessionToken": "{AWS_SESSION}", "Expiration": "2026-01-01T00:00:00Z"}}}}',
        '{"Credentials": {"AccessKeyId": "ASIAIOSFODNN7EXAMPLE", "SecretAccessKey": "***", '
        '"SessionToken": "***", "Expiration": "2026-01-01T00:00:00Z"}}',
    ),
    "aws_presigned_url": (
        "GET https://ckpts.s3.amazonaws.com/run1/step_100.pt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Security-Token={AWS_SESSION}&X-Amz-Expires=3600&X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        "GET https://ckpts.s3.amazonaws.com/run1/step_100.pt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Security-Token=***&X-Amz-Expires=3600&X-Amz-Signature=***",
    ),
    "aws_secret_in_s3_option": (
        f"args: --s3-access-key-id AKIAIOSFODNN7EXAMPLE --s3-secret-access-key {AWS_SECRET}",
        "args: --s3-access-key-id AKIAIOSFODNN7EXAMPLE --s3-secret-access-key ***",
    ),
    # -- GCP --------------------------------------------------------------------------------------
    "gcp_service_account_json": (
        '{"type": "service_account", "project_id": "rl-proj", "private_key_id": "1f2e3d4c5b6a", '
        '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n", '
        '"client_email": "trainer@rl-proj.iam.gserviceaccount.com"}',
        '{"type": "service_account", "project_id": "rl-proj", "private_key_id": "1f2e3d4c5b6a", '
        '"private_key": "***", "client_email": "trainer@rl-proj.iam.gserviceaccount.com"}',
    ),
    "gcp_service_account_dict_repr": (
        "credentials info: {'type': 'service_account', 'private_key': '-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n"
        "-----END PRIVATE KEY-----\\n', 'token_uri': 'https://oauth2.googleapis.com/token'}",
        "credentials info: {'type': 'service_account', 'private_key': '***', 'token_uri': 'https://oauth2.googleapis.com/token'}",
    ),
    "gcp_oauth_access_token_response": (
        '{"access_token": "ya29.a0AfB_byC9xYzExample-Token_0123", "expires_in": 3599, "token_type": "Bearer"}',
        '{"access_token": "***", "expires_in": 3599, "token_type": "Bearer"}',
    ),
    "gcp_api_key_env": ("GOOGLE_API_KEY=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "GOOGLE_API_KEY=***"),
    "gcp_refresh_token": ("refresh_token=1//0gAbCdEfGhIjKlMnOpQrStUv-wXyZ", "refresh_token=***"),
    # -- Azure ------------------------------------------------------------------------------------
    "azure_storage_connection_string": (
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=rlckpts;"
        f"AccountKey={AZURE_ACCOUNT_KEY};EndpointSuffix=core.windows.net",
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=rlckpts;"
        "AccountKey=***;EndpointSuffix=core.windows.net",
    ),
    "azure_sas_url": (
        "uploading to https://rlckpts.blob.core.windows.net/runs/step_100.pt?sv=2022-11-02&ss=b&srt=co&sp=rwl"
        "&se=2026-01-01T00:00:00Z&sig=Gp3q%2BabcDEF0123456789%2Fxyz%3D failed",
        "uploading to https://rlckpts.blob.core.windows.net/runs/step_100.pt?sv=2022-11-02&ss=b&srt=co&sp=rwl"
        "&se=2026-01-01T00:00:00Z&sig=*** failed",
    ),
    "azure_client_secret_env": ("AZURE_CLIENT_SECRET=Xq38Q~abcDEF.ghiJKL-mno_pqrSTU", "AZURE_CLIENT_SECRET=***"),
    "azure_openai_api_key_header": ("api-key: 0123456789abcdef0123456789abcdef", "api-key: ***"),
    "azure_service_bus_shared_access_key": (
        "Endpoint=sb://rl-events.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=AbCdEf0123456789+gHiJkLmN=",
        "Endpoint=sb://rl-events.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=***",
    ),
    # -- ssh and PEM keys -------------------------------------------------------------------------
    "pem_rsa_key_in_a_multiline_record": (
        f"loaded deploy key:\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
        "loaded deploy key:\n-----BEGIN RSA PRIVATE KEY-----\n***\n-----END RSA PRIVATE KEY-----",
    ),
    "pem_openssh_key_then_more_text": (
        f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU\n{PEM_BODY}\n"
        "-----END OPENSSH PRIVATE KEY-----\nssh setup done",
        "-----BEGIN OPENSSH PRIVATE KEY-----\n***\n-----END OPENSSH PRIVATE KEY-----\nssh setup done",
    ),
    "pem_encrypted_key_with_headers": (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n"
        f"{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\n***\n-----END RSA PRIVATE KEY-----",
    ),
    "pem_ec_key_escaped_in_an_exception": (
        "ValueError: Could not deserialize key data: b'-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIIrYSSNQFaA2Hwf1du\\n"
        "-----END EC PRIVATE KEY-----\\n'",
        "ValueError: Could not deserialize key data: b'-----BEGIN EC PRIVATE KEY-----\\n***\\n-----END EC PRIVATE KEY-----\\n'",
    ),
    "pem_key_cut_short": (
        f"key file head:\n-----BEGIN PRIVATE KEY-----\n{PEM_BODY}",
        "key file head:\n-----BEGIN PRIVATE KEY-----\n***",
    ),
    "pem_key_cut_short_then_text": (
        f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\nssh setup done with token=abc123",
        "-----BEGIN PRIVATE KEY-----\n***\nssh setup done with token=***",
    ),
    "ssh_key_passphrase": ("passphrase: 'correct horse battery staple'", "passphrase: '***'"),
    # -- database and broker URLs -----------------------------------------------------------------
    "postgres_url": ("connecting to postgresql://trainer:s3cr3t@db.internal:5432/runs", "connecting to postgresql://trainer:***@db.internal:5432/runs"),
    "mysql_url_password_with_at_and_colon": (
        "MLFLOW_BACKEND_STORE_URI=mysql+pymysql://root:p@ss:w0rd@127.0.0.1:3306/mlflow",
        "MLFLOW_BACKEND_STORE_URI=mysql+pymysql://root:***@127.0.0.1:3306/mlflow",
    ),
    "mongodb_srv_url": (
        "mongodb+srv://admin:Zx9%40pw@cluster0.abcde.mongodb.net/?retryWrites=true&w=majority",
        "mongodb+srv://admin:***@cluster0.abcde.mongodb.net/?retryWrites=true&w=majority",
    ),
    "redis_url_without_user": ("redis://:ray-redis-pw@10.0.0.1:6379/0", "redis://:***@10.0.0.1:6379/0"),
    "amqp_url": ("broker_url = 'amqp://guest:guest@localhost:5672//'", "broker_url = 'amqp://guest:***@localhost:5672//'"),
    "git_url_with_app_token": (
        f"git clone https://x-access-token:{GHS}@github.com/NovaSky-AI/SkyRL.git",
        "git clone https://x-access-token:***@github.com/NovaSky-AI/SkyRL.git",
    ),
    # -- vLLM and Ray -----------------------------------------------------------------------------
    "vllm_serve_api_key": (
        "vllm serve /models/llama --api-key my-server-key-123 --port 8001",
        "vllm serve /models/llama --api-key *** --port 8001",
    ),
    "vllm_api_key_quoted_with_blanks": (
        "python -m vllm.entrypoints.openai.api_server --model m --api-key 'two words' --port 8001",
        "python -m vllm.entrypoints.openai.api_server --model m --api-key '***' --port 8001",
    ),
    "vllm_argv_list": (
        "argv: ['vllm', 'serve', '--api-key', 'my-server-key-123', '--port', '8001']",
        "argv: ['vllm', 'serve', '--api-key', '***', '--port', '8001']",
    ),
    "vllm_non_default_args_list": (
        "non-default args: {'model': '/models/llama', 'api_key': ['key-one', 'key-two'], 'max_model_len': 4096}",
        "non-default args: {'model': '/models/llama', 'api_key': [***], 'max_model_len': 4096}",
    ),
    "vllm_api_key_env": ("VLLM_API_KEY=token-abc123 vllm serve /models/llama", "VLLM_API_KEY=*** vllm serve /models/llama"),
    # ray/rllib/examples/utils.py takes --wandb-key
    "rllib_wandb_key_option": (
        f"python ppo.py --enable-new-api-stack --wandb-key {WANDB} --wandb-project rl",
        "python ppo.py --enable-new-api-stack --wandb-key *** --wandb-project rl",
    ),
    "ray_redis_password": ("ray start --head --redis-password='5241590000000000'", "ray start --head --redis-password='***'"),
    "ray_auth_token_env": ("RAY_AUTH_TOKEN=3f9a1c0e7b2d4f6a8c0e2b4d6f8a0c2e", "RAY_AUTH_TOKEN=***"),
    "ray_job_runtime_env_json": (
        f"""ray job submit --runtime-env-json='{{"env_vars": {{"WANDB_API_KEY": "{WANDB}", "OPENAI_API_KEY": "{OPENAI}"}}}}' """
        "-- python main.py",
        """ray job submit --runtime-env-json='{"env_vars": {"WANDB_API_KEY": "***", "OPENAI_API_KEY": "***"}}' """
        "-- python main.py",
    ),
    "ray_grpc_metadata_pairs": (
        "metadata=(('authorization', 'Bearer 3f9a1c0e7b2d4f6a'),)",
        "metadata=(('authorization', 'Bearer ***'),)",
    ),
    "grpc_metadata_pair_without_scheme": (
        "metadata=[('authorization', '3f9a1c0e7b2d4f6a')]",
        "metadata=[('authorization', '***')]",
    ),
    "asgi_raw_headers_bytes": (
        "scope headers: [(b'host', b'127.0.0.1:8000'), (b'authorization', b'Basic dXNlcjpwYXNz')]",
        "scope headers: [(b'host', b'127.0.0.1:8000'), (b'authorization', b'Basic ***')]",
    ),
    "skyrl_hydra_override_api_key": (
        f"overrides: environment.skyrl_gym.llm_as_a_judge.api_key={OPENAI} trainer.logger=wandb",
        "overrides: environment.skyrl_gym.llm_as_a_judge.api_key=*** trainer.logger=wandb",
    ),
    # -- quoting: whole values ----------------------------------------------------------------------
    "quoted_value_with_blanks": ('secret_key: "open sesame street"', 'secret_key: "***"'),
    "quoted_value_with_comma_and_semicolon": ('db password="a,b;c d" user=ann', 'db password="***" user=ann'),
    "json_escaped_quote_inside_a_value": ('{"password": "ab\\"cd ef", "user": "ann"}', '{"password": "***", "user": "ann"}'),
    "json_inside_a_message_escaped_quote": (
        'payload={\\"token\\": \\"ab\\\\\\"cd ef\\", \\"n\\": 1}',
        'payload={\\"token\\": \\"***\\", \\"n\\": 1}',
    ),
    "bytes_value": ("token=b'\\x00\\xffsecret bytes' sent", "token=b'***' sent"),
    "bytes_value_in_a_dict": ("{'api_key': b'k3y with blank', 'n': 1}", "{'api_key': b'***', 'n': 1}"),
    "quote_never_closed": ("password: 'hunter2 and the rest", "password: '***"),
    "passwd_key": ("login user=ann passwd=hunter22", "login user=ann passwd=***"),
    "authorization_scheme_inside_quotes": ("{'Authorization': 'Basic dXNlcjpwYXNz'}", "{'Authorization': 'Basic ***'}"),
    "jwt_id_token": ("id_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", "id_token=***"),
    "camel_case_access_token": (
        "{accessToken: 'gho_16C7e42F292c6912E7710c838347Ae178B4a', expiresIn: 3600}",
        "{accessToken: '***', expiresIn: 3600}",
    ),
    "api_token_in_prose": ("API token: 3f9a1c0e7b2d4f6a", "API token: ***"),
}

# Lines the packages really print (from their source; the format arguments filled in), each written
# unchanged. The first ones are the issue's own examples.
BENIGN: dict[str, str] = {
    "issue_sampled_token": "Sampled token: hello",
    "issue_time_to_first_token": "time to first token: 35 ms",
    "issue_bos_token": "bos_token: <s>",
    "issue_path_with_sk": "saved /data/checkpoints/sk-learn-baseline-0001/step_100 and ./sk-experiments-v2",
    # vllm/v1/metrics/loggers.py, LoggingStatLogger.log
    "vllm_metrics": (
        "Engine 000: Avg prompt throughput: 12.8 tokens/s, Avg generation throughput: 25.3 tokens/s, "
        "Running: 1 reqs, Waiting: 0 reqs, GPU KV cache usage: 0.1%, Prefix cache hit rate: 0.0%"
    ),
    # vllm/entrypoints/serve/utils/api_utils.py, log_non_default_args (vLLM masks these two itself)
    "vllm_non_default_args": (
        "non-default args: {'model': '/models/tiny-llama', 'api_key': '***', 'hf_token': '***', 'max_model_len': 128}"
    ),
    # vllm/sampling_params.py, SamplingParams.__repr__ (printed by vllm 0.30.0 here)
    "vllm_sampling_params": (
        "SamplingParams(n=1, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0, temperature=1.0, "
        "watermarking=True, top_p=1.0, top_k=0, min_p=0.0, seed=None, stop=[], stop_token_ids=[2], bad_words=[], "
        "thinking_token_budget=None, include_stop_str_in_output=False, ignore_eos=False, max_tokens=128, min_tokens=0, "
        "logprobs=None, prompt_logprobs=None, skip_special_tokens=True, spaces_between_special_tokens=True, "
        "structured_outputs=None, extra_args=None)"
    ),
    # vllm/v1/engine/core.py with vllm/config/vllm.py, VllmConfig.__str__
    "vllm_engine_config": (
        "Initializing a V1 LLM engine (v0.30.0) with config: model='/models/tiny-llama', speculative_config=None, "
        "tokenizer='/models/tiny-llama', skip_tokenizer_init=False, tokenizer_mode=auto, revision=None, "
        "tokenizer_revision=None, trust_remote_code=False, dtype=torch.float32, max_seq_len=128"
    ),
    # vllm/v1/engine/detokenizer.py
    "vllm_invalid_token_id": "Encountered invalid token id: 128256",
    # vllm/tokenizers/mistral.py (and transformers/tokenization_mistral_common.py)
    "vllm_convert_token": "Failed to convert token \u2581hello to id, replacing with <unk>",
    # vllm/compilation/passes/fusion/sequence_parallelism.py
    "vllm_min_token_threshold": "Sequence parallelism min token threshold: 512",
    # vllm/entrypoints/mcp/tool.py
    "vllm_exa_api_key_unset": "EXA_API_KEY is not set, browsing is disabled",
    # vllm/config/model.py
    "vllm_use_pad_token": "use_pad_token has been deprecated; please use use_sep_token instead.",
    # vllm/kernels/helion/config_manager.py
    "vllm_helion_key": "Set config for kernel 'fused_moe': platform='cpu', key='E8_N512_K256'",
    # vllm/v1/kv_offload/tiering/p2p/session/client.py
    "vllm_p2p_lookup_key": "P2P LOOKUP client 3: REGISTER kv_request_id=cmpl-7f3a-0 key=5f3a9c21 (unsent=2)",
    # vllm/entrypoints/serve/utils/request_logger.py
    "vllm_request_details": (
        "Request cmpl-7f3a-0 details: prompt: 'Hello', prompt_token_ids: [1, 15043], prompt_embeds shape: None."
    ),
    "vllm_response_details": "Generated response cmpl-7f3a-0 details: output_token_ids: [450, 4996, 2]",
    # vllm/renderers/base.py
    "vllm_bos_token_id": "Using None for BOS token id because tokenizer is not initialized",
    "vllm_decoder_start_token": (
        "Falling back on <BOS> for decoder start token id because decoder start token id is not available."
    ),
    # vllm/v1/structured_output/__init__.py
    "vllm_draft_token": "Unexpected: grammar terminated or rejected draft token 1234 for request cmpl-1 during bitmask fill.",
    # vllm/entrypoints/generate/base/serving.py
    "vllm_token_id_placeholder": "resolve_token_id_placeholder: token_id 99 has no vocab entry; substituting empty string",
    # vllm/tool_parsers/poolside_v1_tool_parser.py
    "vllm_tool_parser_arg_key": "arg_key = location, arg_val = Paris",
    # transformers: print(AutoTokenizer.from_pretrained(...)), transformers 5.24.0 here
    "transformers_tokenizer_repr": (
        "TokenizersBackend(name_or_path='/models/tiny-llama', vocab_size=512, model_max_length=1000000000000000019884624838656, "
        "padding_side='right', truncation_side='right', special_tokens={'bos_token': '<s>', 'eos_token': '</s>', "
        "'unk_token': '<unk>'}, added_tokens_decoder={\n\t0: AddedToken(\"<unk>\", rstrip=False, lstrip=False, "
        "single_word=False, normalized=False, special=True),\n})"
    ),
    # transformers: tokenizer.special_tokens_map of a chat model
    "transformers_special_tokens_map": (
        "{'bos_token': '<|im_start|>', 'eos_token': '<|im_end|>', 'pad_token': '<|endoftext|>', "
        "'additional_special_tokens': ['<|im_start|>', '<|im_end|>']}"
    ),
    # transformers/generation/continuous_batching/requests.py
    "transformers_useless_token": "Request req_0 generated a useless token: 128001",
    # transformers/pipelines/zero_shot_classification.py
    "transformers_pad_token_eos": (
        "Tokenizer was not supporting padding necessary for zero-shot, attempting to use  `pad_token=eos_token`"
    ),
    # transformers/models/deberta/tokenization_deberta.py
    "transformers_mask_token_unset": "Using mask_token, but it is not set yet.",
    # transformers/generation/configuration_utils.py
    "transformers_forced_bos": "Please make sure the generation config includes `forced_bos_token_id=1`. ",
    # transformers/integrations/integration_utils.py
    "transformers_comet_api_key": (
        "comet_ml is installed but the Comet API Key is not configured. Please set the `COMET_API_KEY` "
        "environment variable to enable Comet logging."
    ),
    # transformers/generation/continuous_batching/input_outputs.py
    "transformers_graph_key": "Setting graph for key = (8, 128)",
    # transformers: a LlamaConfig line, as print(config) writes it
    "transformers_config_pad_token": '  "pad_token_id": null,',
    # ray/scripts/scripts.py, `ray cluster-dump --ssh-key` takes the key file's path
    "ray_ssh_key_path": "+ ray cluster-dump cluster.yaml --ssh-user ubuntu --ssh-key ~/.ssh/ray-autoscaler.pem",
    # ray/_private/authentication/authentication_token_setup.py
    "ray_token_auth_enabled": (
        "Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out. "
        "For more information, see https://docs.ray.io/en/latest/ray-security/token-auth.html"
    ),
    "ray_generated_token": "Generated new authentication token and saved to /home/ray/.ray/auth_token",
    # ray/_private/authentication/http_token_authentication.py
    "ray_no_token_found": "Token authentication is enabled but no token was found. Requests to authenticated clusters will fail.",
    # ray/autoscaler/_private/kuberay/node_provider.py
    "ray_k8s_token_refresh": "Refreshing K8s API client token and certs.",
    # ray/llm/_internal/serve/routing_policies/kv_aware/token_channel.py
    "ray_token_channel": "Prompt-token ZMQ token channel listening on tcp://127.0.0.1:5555.",
    # ray/data/_internal/planner/plan_all_to_all_op.py
    "ray_aggregation_key": (
        "GPU aggregation plan is not supported for key=user_id, aggs=[Sum(x)]: cudf missing; "
        "falling back to CPU hash aggregate."
    ),
    # ray/air/integrations/wandb.py
    "ray_wandb_api_key_hook": "Error executing WANDB_SETUP_API_KEY_HOOK to setup API key: hook not found",
    # ray/llm/_internal/serve/benchmark/interactive.py
    "ray_loading_tokenizer": "Loading tokenizer: /models/tiny-llama",
    # ray/experimental/sandbox/_internal/image_utils.py
    "ray_registry_auth_token": "Failed to obtain registry auth token from 'https://auth.docker.io/token': 401 Unauthorized",
    # skyrl/train/utils/utils.py
    "skyrl_wandb_api_key": "Exporting wandb api key to ray runtime env",
    "skyrl_mlflow_token": "Exporting mlflow tracking token to ray runtime env",
    # skyrl/train/sft_trainer.py
    "skyrl_cache_key": "Cache key: 3f9a2c1e7b5d",
    "skyrl_step_metrics": "Step 10: loss=0.4321, grad_norm=1.25, tokens_per_second=1234",
    # skyrl/backends/skyrl_train/inference_servers/vllm_server_actor.py
    "skyrl_sampled_token": (
        "sample-support repair: 2 token(s) had the sampled id absent from top-20 support; overwrote the weakest member "
        "to preserve the invariant (vLLM approx top-k/top-p pivot artifact); example: sampled token 42 at row 3"
    ),
    # skyrl/backends/skyrl_train/workers/megatron/megatron_worker.py
    "skyrl_sequence_packing": "sequence packing | dp_rank=0 microbatches_this_step=4 seq_len=4096 tokens=16000",
    # huggingface_hub/_login.py
    "hf_hub_env_token_note": (
        "Note: Environment variable`HF_TOKEN` is set and is the current active token independently from the token "
        "you've just configured."
    ),
    # huggingface_hub/utils/_auth.py
    "hf_hub_token_saved": "The token `my-write-token` has been saved to /root/.cache/huggingface/stored_tokens",
}
