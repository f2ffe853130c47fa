import pluggy

hookimpl = pluggy.HookimplMarker("alm_bench")
