package bench

// stopNATS stops the embedded nats-server, if a build with -tags nats
// started one (nats.go replaces it).
var stopNATS = func(*runEnv) {}
