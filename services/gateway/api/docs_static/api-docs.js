// Starts Swagger UI on /api/docs. A file of its own rather than an inline script: the site's
// Content-Security-Policy runs scripts from the site only. The page names the document's
// address on the element Swagger UI fills in.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    // Swagger UI would otherwise send the document to its public validator, another host.
    validatorUrl: null,
  });
});
