# The two commands a new user needs: `make dev` (local stack) and `make test` (everything).
# Both install what they need themselves (infra/bootstrap.sh: .venv, Node peers).

PORT ?= 3000
USER_ID ?= user_demo
EVENT ?= events/stripe/checkout.session.completed.credits_starter.json
export PORT

.PHONY: dev test bench bootstrap send token build lint fmt stripe-bootstrap gates

## make dev: moto + every function on http://127.0.0.1:$(PORT); Ctrl-C stops it all.
dev: bootstrap
	cargo build --quiet -p local-stack
	exec cargo run --quiet -p local-stack -- serve

## make test: fmt, clippy, cfn-lint, unit, contract (moto) and black-box tests.
test: bootstrap
	bash infra/test.sh

## make bench: intake vs the official Stripe SDKs and the floor, cold starts, sizes, memory,
## cost per event and local-stack throughput, printed as one table (infra/bench/run.py).
bench: bootstrap
	.venv/bin/python infra/bench/run.py

bootstrap:
	@bash infra/bootstrap.sh

## make send EVENT=events/stripe/<file>.json [FRESH=1]: sign with the local secret and post.
send:
	@cargo run --quiet -p local-stack -- send $(EVENT) $(if $(FRESH),--fresh,)

## make token USER_ID=user_demo [ADMIN=1] [SERVICE=1]: a local bearer token (SERVICE=1: scope billing:service, for the app's server).
token:
	@cargo run --quiet -p local-stack -- token $(USER_ID) $(if $(ADMIN),--admin,) $(if $(SERVICE),--service,)

## make build [ARCH=arm64|x86-64]: every function for release, zipped (target/lambda/<fn>/bootstrap.zip).
## arm64 (the template's default) cross-compiles with Zig, installed into .venv here.
ARCH ?= arm64
build: bootstrap
	.venv/bin/python -m pip install --quiet --requirement infra/requirements-build.txt
	$(if $(filter arm64,$(ARCH)),rustup target add aarch64-unknown-linux-gnu,rustup target add x86_64-unknown-linux-gnu)
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo-lambda lambda build --release --$(ARCH) --output-format zip \
	  $(foreach f,webhook worker checkout-status account checkout portal admin usage referral publisher,--package $(f))

## make stripe-bootstrap [APPLY=1] [ALLOW_LIVE=1] [WEBHOOK_URL=…]: create the catalog's products/prices
## and the webhook endpoint (pinned API version, exactly the handled event types) in Stripe.
stripe-bootstrap:
	@cargo run --quiet -p billing-ops -- stripe-bootstrap $(if $(APPLY),--apply,) $(if $(ALLOW_LIVE),--allow-live,) $(if $(WEBHOOK_URL),--webhook-url $(WEBHOOK_URL),)

## make gates STACK_URL=<ApiUrl> [WEBHOOK_URL=<WebhookUrl>] [REPORT=gates-report.json]: the go-live
## gates against the key's Stripe account and the stack, read-only; a table, a JSON report, exit 1 on a failed gate.
gates:
	@cargo run --quiet -p billing-ops -- gates --stack-url "$(STACK_URL)" $(if $(WEBHOOK_URL),--webhook-url $(WEBHOOK_URL),) $(if $(REPORT),--report $(REPORT),)

fmt:
	cargo fmt --all
