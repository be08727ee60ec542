package printer

import clientv3 "go.etcd.io/etcd/client/v3"

import (
	"io"
	"strings"
	"unicode/utf8"
)

// renderTable draws etcdctl's ASCII tables: a border, the header upper-cased
// and centred, a border, each row right-aligned, and a closing border.
func renderTable(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	hdr := make([]string, len(header))
	for i, h := range header {
		hdr[i] = strings.ToUpper(strings.TrimSpace(strings.NewReplacer("_", " ", ".", " ").Replace(h)))
		width[i] = utf8.RuneCountInString(hdr[i])
	}
	for _, row := range rows {
		for i, c := range row {
			if n := utf8.RuneCountInString(c); i < len(width) && n > width[i] {
				width[i] = n
			}
		}
	}
	var b strings.Builder
	border := func() {
		b.WriteString("+")
		for _, n := range width {
			b.WriteString(strings.Repeat("-", n+2))
			b.WriteString("+")
		}
		b.WriteString("\n")
	}
	line := func(cells []string, pad func(string, int) string) {
		b.WriteString("|")
		for i, n := range width {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			b.WriteString(" " + pad(c, n) + " |")
		}
		b.WriteString("\n")
	}
	border()
	line(hdr, padCenter)
	border()
	for _, row := range rows {
		line(row, padLeft)
	}
	border()
	_, _ = io.WriteString(w, b.String())
}

func padLeft(s string, n int) string {
	return strings.Repeat(" ", n-utf8.RuneCountInString(s)) + s
}

func padCenter(s string, n int) string {
	gap := n - utf8.RuneCountInString(s)
	left := gap / 2
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", gap-left)
}

func (p *tablePrinter) MemberList(r clientv3.MemberListResponse) error {
	hdr, rows := memberListTable(r)
	renderTable(p.w, hdr, rows)
	return nil
}

func (p *tablePrinter) DBStatus(ds DBStatus) error {
	hdr, rows := dbStatusTable(ds)
	renderTable(p.w, hdr, rows)
	return nil
}

func (p *tablePrinter) DBHashKV(h DBHashKV) error {
	hdr, rows := dbHashKVTable(h)
	renderTable(p.w, hdr, rows)
	return nil
}
