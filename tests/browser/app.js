// The app side of the test page: one SDK instance with every service URL pointed at the
// Plugboard server named by `?server=`, and a Connect button whose click handler calls
// installIntegration (a user gesture, as popup blockers require).
(function () {
  const server = new URL(location.href).searchParams.get("server");
  const environments = {
    ZEUS_PUBLIC_URL: server,
    HERMES_PUBLIC_URL: server,
    WORKER_PROXY_PUBLIC_URL: server,
    API_TRIGGER_KIT_PUBLIC_URL: server,
    CONNECT_PUBLIC_URL: server,
    DASHBOARD_PUBLIC_URL: server,
    CDN_PUBLIC_URL: server,
    PASSPORT_PUBLIC_URL: server,
    PASSPORT_PRODUCTION_URL: server,
  };
  const ConnectSDK = module.exports.default;
  // Skip the localStorage bootstrap: a stored state would override these environments.
  const paragon = new ConnectSDK(environments, { skipBootstrapWithLastKnownState: true });
  paragon.setHeadless(true);
  window.paragon = paragon;
  // Every onIntegrationInstall the SDK fires, as an app counting installs would see them.
  window.installEvents = [];
  paragon.subscribe("onIntegrationInstall", function (event) {
    window.installEvents.push(event && event.integrationType);
  });

  window.render = function (status) {
    document.getElementById("status").textContent = status;
    document.getElementById("user").textContent = JSON.stringify(paragon.getUser(), null, 2);
  };

  // Set by the runner before it clicks; the outcome lands in `window.installOutcome`.
  window.pendingInstall = null;
  window.installOutcome = null;
  document.getElementById("install").addEventListener("click", function () {
    const { integration, options } = window.pendingInstall;
    let started;
    try {
      started = Promise.resolve(paragon.installIntegration(integration, options));
    } catch (error) {
      started = Promise.reject(error); // the SDK throws synchronously on a failed precondition
    }
    started.then(
      (value) => { window.installOutcome = { ok: true, value: value ?? null }; },
      (error) => { window.installOutcome = { ok: false, error: String(error && error.message || error) }; },
    );
  });
  render("ready");
})();
