import Foundation

/// `lopper plugin new NAME`: a package folder to start from, which passes `plugin check`
/// and `plugin test` as it is: `plugin.lua` (a DARE-style prune hook with one parameter
/// and its doc comment), `tests.lua` (hand-computed cases), README.md and example settings.
public enum PluginScaffold {
    public static func files(name: String) -> [String: String] {
        [
            PluginPackage.sourceName: """
            -- \(name): describe the method here, with the paper it follows (authors, year, arXiv id).
            -- The hook gets the lazy delta D = W1 - W0 of one tensor and returns D' (see Docs/plugins.md).
            -- This starting point is DARE: keep each entry with probability 1 - p, rescale by 1 / (1 - p).
            return {
              name = "\(name)", version = "0.1.0", api = 2,
              summary = "Describe \(name) in one line",
              -- Claims `plugin check` tests: unbiased = E[D'] = D over seeds.
              properties = { unbiased = true },
              params = {
                scale = { type = "number", default = 1, min = 0, doc = "extra factor on the kept entries (1: unbiased)" },
              },
              prune = function(delta, ctx)
                local keep = 1 - ctx.params.rate
                return delta * ctx.rng:bernoulli(keep) * (ctx.params.scale / keep)
              end,
            }

            """,
            PluginPackage.testsName: """
            -- Tests of \(name), run by `lopper plugin test` and before `plugin install`, in the same sandbox.
            -- plugin.prune(delta, params, options) runs the plugin as `lopper prune` would and returns D'.

            test("rate 0 keeps the delta", function()
              local d = lopper.from_table({ { 1, -2 }, { 3, 0.5 } })
              expect_near(plugin.prune(d, { rate = 0 }), { 1, -2, 3, 0.5 })
            end)

            test("kept entries are rescaled by 1 / (1 - p), dropped ones are 0", function()
              local d = lopper.full({ 8, 16 }, 0.25)
              local out = plugin.prune(d, { rate = 0.5 }, { seed = 3 })
              for _, value in ipairs(out:totable()) do
                assert(value == 0 or math.abs(value - 0.5) < 1e-7, "got " .. value)
              end
            end)

            test("the same seed gives the same mask", function()
              local d = lopper.full({ 4, 32 }, 1)
              expect_near(plugin.prune(d, { rate = 0.7 }, { seed = 9 }), plugin.prune(d, { rate = 0.7 }, { seed = 9 }), 0)
            end)

            """,
            "README.md": """
            # \(name)

            What the method does, the paper it follows, and when to use it.

            ```
            lopper plugin test .            # its own tests
            lopper plugin check .           # sandbox, manifest, determinism, finiteness, properties, tests
            lopper plugin pack .            # \(name)-0.1.0.lopper.tar and its .sha256, to share
            lopper plugin install \(name)-0.1.0.lopper.tar
            lopper prune --base B --finetuned F --method \(name)@0.1.0 $(cat example.settings) --out OUT
            ```

            """,
            "example.settings": "--set rate=0.9 --set scale=1\n",
        ]
    }
}
