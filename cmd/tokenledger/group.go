package main

// group runs actors that start and stop together, in the manner of
// oklog/run: when the first actor's execute returns, every actor's
// interrupt is called, and run waits for all of them to return.
type group struct {
	actors []actor
}

// actor is a long-lived part of the process: execute runs it until it is
// done or interrupted; interrupt makes execute return soon.
type actor struct {
	execute   func() error
	interrupt func(error)
}

// add registers an actor.
func (g *group) add(execute func() error, interrupt func(error)) {
	g.actors = append(g.actors, actor{execute, interrupt})
}

// run starts every actor and returns the error of the first one to
// return, after all have returned.
func (g *group) run() error {
	if len(g.actors) == 0 {
		return nil
	}
	errs := make(chan error, len(g.actors))
	for _, a := range g.actors {
		go func() { errs <- a.execute() }()
	}
	err := <-errs
	for _, a := range g.actors {
		a.interrupt(err)
	}
	for range len(g.actors) - 1 {
		<-errs
	}
	return err
}
