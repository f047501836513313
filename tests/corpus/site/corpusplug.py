"""A throwaway plugin for the broken-config corpus: options with bounds, a variable name, a worker env table."""

from provisioner import LaunchResult, Option, RoleSpec, hookimpl


class Envy:
    def __init__(self, options, context):
        self.options = options

    def launch(self, request):
        return LaunchResult(ok=False, detail="the corpus plugin launches nothing")

    def check(self, pools, network):
        return ["corpus: this check always says no"] if self.options["refuse"] else []


class NoLaunch:  # a launcher without a launch method
    def __init__(self, options, context):
        pass


OPTIONS = {
    "token_env": Option(str, "CORPUS_TOKEN", "variable holding a token", env=True),
    "retries": Option(int, 2, "extra tries", min=0, max=10),
    "refuse": Option(bool, False, "make check() fail"),
}
POOL_OPTIONS = {
    "env": Option(dict, {}, "the worker's non-secret environment"),
    "timeout": Option((int, float), 60.0, "seconds", min=1, max=3600),
}


@hookimpl
def provisioner_job_launchers():
    yield RoleSpec("envy", Envy, options=OPTIONS, pool_options=POOL_OPTIONS)
    yield RoleSpec("nolaunch", NoLaunch)
