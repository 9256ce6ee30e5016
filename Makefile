# Lambda artifacts for `sam build` (every function has `Metadata: BuildMethod: makefile`).
#
# sam build runs `make build-<LogicalId>` once per function, in this directory
# (`build_in_source = true` in samconfig.toml), with ARTIFACTS_DIR set to
# .aws-sam/build/<LogicalId>. Each target runs ONE `cargo lambda build --release` of every
# function package and copies its own binary out of it: the first target compiles and links all
# of them (two links at a time), for the other targets cargo has nothing left to do.
#
# The architecture is the one SAM resolved for the function from the template
# (Globals `Architectures: [!Ref Architecture]` after --parameter-overrides): sam build writes it
# to .aws-sam/build.toml before it runs any target. LAMBDA_ARCH (arm64 | x86_64) may be given
# too (needed when there is no build.toml entry, e.g. `make lambda`); it must agree.
# The copied bootstrap's ELF machine is checked against the architecture.
#
# LAMBDA_LTO (default false) overrides [profile.release] lto for this build only: with the
# profile's thin LTO every binary re-optimizes all its dependencies when it links (143 s of one
# core per binary, measured), without it a binary links in about 16 s and came out no larger.
# `LAMBDA_LTO=thin sam build ...` builds with the profile's LTO.
#
#   sam build --config-env x86_64            # x86_64 (samconfig.toml); `sam build` = arm64
#   make lambda LAMBDA_ARCH=x86_64           # the same cargo build without SAM

CARGO ?= cargo
LAMBDA_LTO ?= false
TEMPLATE := template.yaml
# Every function of the template and its binary (`Metadata.BuildProperties.Binary`).
BINARIES := $(shell awk '$$1 == "Binary:" { print $$2 }' $(TEMPLATE))
# The binary of function $(1).
binary_of = $(shell awk -v id='$(1)' '/^  [A-Za-z0-9]+:$$/ { cur = $$1; sub(/:$$/, "", cur) } cur == id && $$1 == "Binary:" { print $$2; exit }' $(TEMPLATE))
# The architecture sam build resolved for function $(1): its build definition in build.toml
# (beside the build dir) has `architecture = "..."` and then `functions = ["<LogicalId>"]`.
sam_arch_of = $(shell awk -v id='"$(1)"' '/^\[/ { a = "" } $$1 == "architecture" { a = $$3; gsub(/"/, "", a) } $$1 == "functions" && index($$0, id) { print a; exit }' '$(ARTIFACTS_DIR)/../../build.toml' 2>/dev/null)

cargo_flag_x86_64 := --x86-64
cargo_flag_arm64 := --arm64
elf_machine_x86_64 := 62
elf_machine_arm64 := 183

# One build of every function for $(ARCH); cargo makes the repeats no-ops.
# Binaries land in target/lambda/<arch>/<binary>/bootstrap.
define cargo_lambda_build
	CARGO_PROFILE_RELEASE_LTO=$(LAMBDA_LTO) \
	$(CARGO) lambda build --release $(cargo_flag_$(ARCH)) --lambda-dir target/lambda/$(ARCH) \
		$(addprefix -p ,$(BINARIES))
endef

.PHONY: lambda
lambda: ARCH = $(LAMBDA_ARCH)
lambda:
	@case '$(ARCH)' in arm64|x86_64) ;; *) echo "make lambda: set LAMBDA_ARCH=arm64 or LAMBDA_ARCH=x86_64" >&2; exit 1;; esac
	$(cargo_lambda_build)

build-%: BIN = $(call binary_of,$*)
build-%: SAM_ARCH = $(call sam_arch_of,$*)
build-%: ARCH = $(or $(LAMBDA_ARCH),$(SAM_ARCH))
build-%:
	@test -n '$(BIN)' || { echo "$@: $* has no Metadata.BuildProperties.Binary in $(TEMPLATE)" >&2; exit 1; }
	@test -n '$(ARTIFACTS_DIR)' || { echo "$@: ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	@test -z '$(LAMBDA_ARCH)' || test -z '$(SAM_ARCH)' || test '$(LAMBDA_ARCH)' = '$(SAM_ARCH)' || \
		{ echo "$@: the template builds $* for $(SAM_ARCH) but LAMBDA_ARCH=$(LAMBDA_ARCH)" >&2; exit 1; }
	@case '$(ARCH)' in arm64|x86_64) ;; \
		'') echo "$@: no architecture: $(ARTIFACTS_DIR)/../../build.toml does not list $*; set LAMBDA_ARCH" >&2; exit 1;; \
		*) echo "$@: unknown architecture '$(ARCH)'" >&2; exit 1;; esac
	$(cargo_lambda_build)
	cp target/lambda/$(ARCH)/$(BIN)/bootstrap '$(ARTIFACTS_DIR)/bootstrap'
	@m=$$(od -An -tu2 -j18 -N2 '$(ARTIFACTS_DIR)/bootstrap' | tr -d ' '); test "$$m" = '$(elf_machine_$(ARCH))' || \
		{ echo "$@: $(ARTIFACTS_DIR)/bootstrap is ELF machine $$m, not $(ARCH)" >&2; rm -f '$(ARTIFACTS_DIR)/bootstrap'; exit 1; }
	@echo "$*: $(BIN) ($(ARCH)) $$(wc -c < '$(ARTIFACTS_DIR)/bootstrap') bytes"
