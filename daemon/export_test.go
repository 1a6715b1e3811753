package daemon

// SetCreateHook makes every topic creation d begins from now on call fn
// (topic name, partition index) before it makes each partition, outside
// d.mu: a test holds a creation there to see what the daemon answers
// meanwhile. fn runs on the creating request's goroutine.
func SetCreateHook(d *Daemon, fn func(topic string, partition int)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.createHook = fn
}

// CreationAbandoned reports whether a delete has asked the creation of
// topic in flight to be abandoned.
func CreationAbandoned(d *Daemon, topic string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.creating[topic]
	return c != nil && c.deleted.Load()
}
