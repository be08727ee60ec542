package printer

// tablePrinter draws ASCII tables; etcdctl has them only for endpoint
// (and member, snapshot) results.
type tablePrinter struct {
	unsupported
	output
}

func (p *tablePrinter) EndpointHealth(hs []EndpointHealth) error {
	hdr, rows := endpointHealthTable(hs)
	renderTable(p.w, hdr, rows)
	return nil
}

func (p *tablePrinter) EndpointStatus(ss []EndpointStatus) error {
	hdr, rows := endpointStatusTable(ss)
	renderTable(p.w, hdr, rows)
	return nil
}

func (p *tablePrinter) EndpointHashKV(hs []EndpointHashKV) error {
	hdr, rows := endpointHashKVTable(hs)
	renderTable(p.w, hdr, rows)
	return nil
}
