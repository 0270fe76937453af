// GET /books/:id with its availability, as the old back end served it: Express and
// Sequelize models over the same database, one Node process. Only for make bench.
//   DATABASE_URL=postgres://... PORT=... node server.js
const express = require("express");
const { Sequelize, DataTypes } = require("sequelize");

const sequelize = new Sequelize(process.env.DATABASE_URL, { logging: false, pool: { max: 10 } });
const options = { freezeTableName: true, timestamps: true };
const Book = sequelize.define("Books", {
  title: DataTypes.STRING, author: DataTypes.STRING, isbn: DataTypes.STRING, copies: DataTypes.INTEGER,
}, options);
const Checkout = sequelize.define("Checkouts", {
  userId: DataTypes.INTEGER, bookId: DataTypes.INTEGER, returnedAt: DataTypes.DATE,
}, options);
const Hold = sequelize.define("Holds", { bookId: DataTypes.INTEGER, status: DataTypes.STRING }, options);

const app = express();
app.get("/books/:id", async (req, res) => {
  const book = await Book.findByPk(Number(req.params.id));
  if (!book) return res.status(404).json({ error: "not found" });
  const [onLoan, held] = await Promise.all([
    Checkout.count({ where: { bookId: book.id, returnedAt: null } }),
    Hold.count({ where: { bookId: book.id, status: "ready" } }),
  ]);
  res.json({ ...book.toJSON(), available: Math.max(book.copies - onLoan - held, 0) });
});
app.listen(Number(process.env.PORT), "127.0.0.1");
