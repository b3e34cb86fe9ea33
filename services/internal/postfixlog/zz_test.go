package postfixlog
import ("testing";"time";"syscall";"fmt")
func cpu() time.Duration { var r syscall.Rusage; syscall.Getrusage(syscall.RUSAGE_SELF,&r); return time.Duration(r.Utime.Nano()+r.Stime.Nano()) }
func TestHotCPU(t *testing.T){
 lines := benchLines(t); const n=2000000
 best1, best2 := 1e9, 1e9
 for r:=0;r<7;r++{
 p:=&Parser{Ref:time.Now()}; var l Line
 c0:=cpu(); for i:=0;i<n;i++{ p.Parse(lines[i%len(lines)],0,&l) }; best1=min(best1, float64(cpu()-c0)/n)
 j:=NewJoiner(JoinerConfig{}); c0=cpu(); for i:=0;i<n;i++{ if p.Parse(lines[i%len(lines)],0,&l) {j.Add(&l)} }; best2=min(best2,float64(cpu()-c0)/n)
 }
 fmt.Printf("corpus parse %.1f  parse+join %.1f ns/line CPU (min of 7)\n", best1, best2)
}
