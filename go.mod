module github.com/kaelix-io/kaelix

go 1.26.0

require (
	github.com/prometheus/procfs v0.23.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
	pgregory.net/rapid v1.3.0
)
