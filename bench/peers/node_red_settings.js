// Node-RED 4.1 settings for the peer run: no editor, the pg 8 driver for function nodes.
module.exports = {
    uiHost: "127.0.0.1",
    httpAdminRoot: false,
    httpNodeRoot: false,
    flowFilePretty: false,
    credentialSecret: false,
    functionGlobalContext: { pg: require("pg") },
    logging: { console: { level: "warn", metrics: false, audit: false } },
};
