// Package processor runs stream processors: chains of plugins that read a
// topic's records, transform, filter or route them, and publish the
// results to other topics. A processor is a Kaelix client like any other:
// its Pipeline reads the input ring in place (client.Subscriber.Poll) and
// publishes straight into the output rings, so the daemon stays off the
// data path.
//
//	reg := processor.NewRegistry(logger)
//	reg.Register("stamp", &builtin.Stamp{}, processor.StageOptions{})
//	reg.Register("only-errors", filter, processor.StageOptions{
//		Config:      processor.Config{"header": "level", "equals": []string{"error"}},
//		Permissions: processor.Permissions{CanReadConfig: true},
//	})
//	p, err := processor.NewPipeline(ctx, c, processor.PipelineConfig{
//		Input: "logs", Group: "log-workers", Outputs: []string{"logs.errors"}, Stages: reg,
//	})
//	err = p.Run(ctx)
//
// # Plugins and actions
//
// A Plugin has a name, a version, Init (given a Context) and Close; a
// StreamProcessor adds Process(*Message) Action. The actions: Continue
// (next stage; after the last, every output), Drop, Route(topic) (that
// output only) and Fail(err) (counted with the error). A stage may set
// headers and replace the payload. Stages that make records of their own
// (window aggregates) implement Emitter; stages that route to topics of
// their configuration implement Router.
//
// # Zero copy
//
// A record that no stage changes is published from the input ring's bytes
// (one copy, into the output ring: the publish itself). Headers are copied
// on the first write into a map the pipeline reuses; SetHeaderInt writes
// numbers into a reused arena. The path through the pipeline allocates
// nothing per record for records without headers on input (the client's
// subscriber allocates the header strings of records that have them),
// whether or not stages add headers: TestPipelineZeroAllocs and
// TestProcessZeroAllocs prove it with testing.AllocsPerRun and an exact
// malloc count.
//
// # Registry and Context
//
// A Registry is the chain: Register by unique name, InitAll (in order;
// the first failure is a *PluginError naming the stage, and the stages
// already initialised are closed), Process, CloseAll (reverse order). The
// Context a plugin gets hands out its configuration only with
// Permissions.CanReadConfig and a metrics handle only with
// CanWriteMetrics (ErrNoPermission otherwise), and always a logger.
//
// # Concurrency and delivery
//
// A Pipeline runs on one goroutine (Run, or PollOnce from a loop of your
// own); its stages are called one record at a time and need no locking.
// Several pipelines in one queue group (in this process or others) share
// one input, each record going to one of them. See Pipeline for what a
// crash may repeat or lose.
package processor
