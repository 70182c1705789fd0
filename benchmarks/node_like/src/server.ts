import express from "express";
import groupBy from "lodash/groupBy";
import { z } from "zod";

const Order = z.object({
  customer: z.string().min(1),
  item: z.string().min(1),
  quantity: z.number().int().positive(),
});
type Order = z.infer<typeof Order>;

const orders: Order[] = [];
const app = express();
app.use(express.json());

app.post("/orders", (request, response) => {
  const parsed = Order.safeParse(request.body);
  if (!parsed.success) {
    response.status(400).json({ error: parsed.error.issues });
    return;
  }
  orders.push(parsed.data);
  response.status(201).json(parsed.data);
});

app.get("/orders/by-customer", (_request, response) => {
  response.json(groupBy(orders, (order) => order.customer));
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, () => console.log(`listening on port ${port}`));
