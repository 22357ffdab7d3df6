// A session that ended while the page was open (expired, logged out elsewhere, key revoked): Dash's
// requests start answering 401, and the page would silently stop refreshing. Send the user to the login
// page instead, coming back here afterwards.
(function () {
  var fetch = window.fetch;
  window.fetch = function () {
    return fetch.apply(this, arguments).then(function (response) {
      if (response.status === 401 && response.url.indexOf("/mlops/_dash-") !== -1) {
        var here = window.location.pathname + window.location.search;
        window.location.assign("/mlops/login?next=" + encodeURIComponent(here));
      }
      return response;
    });
  };
})();
