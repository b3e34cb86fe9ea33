package reportfile_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"

	"github.com/mailmon/mailmon/services/internal/reportfile"
)

func ExampleExtract() {
	// A zip file as receivers attach it, holding one aggregate report.
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, _ := zw.Create("receiver.example!sender.example!1700000000!1700086399.xml")
	w.Write([]byte(`<?xml version="1.0"?><feedback><report_metadata/></feedback>`))
	zw.Close()

	docs, err := reportfile.Extract(z.Bytes(), reportfile.DefaultLimits())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range docs {
		fmt.Println(d.Format, d.Name, len(d.Data))
	}
	_, err = reportfile.Extract([]byte("From: a@b.example\n\nno report here\n"), reportfile.DefaultLimits())
	fmt.Println(errors.Is(err, reportfile.ErrNoReport))
	// Output:
	// dmarc receiver.example!sender.example!1700000000!1700086399.xml 60
	// true
}
