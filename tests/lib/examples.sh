# The examples every kernel test runs: policy, then inventory fixture.
# Sourced; `set -- $EXAMPLES` walks them in pairs.
EXAMPLES="policies/three-tier.yaml tests/fixtures/three-tier.json
policies/shop.yaml tests/fixtures/shop.json
tests/fixtures/policy-all-kinds.yaml tests/fixtures/all-kinds.json
policies/first.yaml tests/fixtures/three-tier.json
policies/teams tests/fixtures/teams.json"
